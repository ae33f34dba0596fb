from datetime import datetime
from typing import Literal

from app.core.schemas import Address, Bool, Code, Input, Int32, Lat, Lon, Name, Output, Version

LocationType = Literal["warehouse", "store", "partner"]


class Capabilities(Input):
    ship: Bool | None = None
    pickup: Bool | None = None
    returns: Bool | None = None


class LocationCreate(Input):
    code: Code
    name: Name
    type: LocationType
    address: Address | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    capabilities: Capabilities | None = None
    priority: Int32 | None = None
    active: Bool = True


class LocationUpdate(Input):
    name: Name | None = None
    address: Address | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    capabilities: Capabilities | None = None
    priority: Int32 | None = None
    active: Bool | None = None
    version: Version | None = None


class CapabilitiesOut(Output):
    ship: bool
    pickup: bool
    returns: bool


class LocationOut(Output):
    id: str
    code: str
    name: str
    type: LocationType
    address: dict | None
    lat: float | None
    lon: float | None
    capabilities: CapabilitiesOut
    priority: int
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime
