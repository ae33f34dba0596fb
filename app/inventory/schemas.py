from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from app.core.schemas import Address, Code, Input, Int32, Lat, Lon, Name, Output

LocationType = Literal["warehouse", "store", "partner"]


class Capabilities(Input):
    ship: bool | None = None
    pickup: bool | None = None
    returns: bool | None = None


class LocationCreate(Input):
    code: Code
    name: Name
    type: LocationType
    address: Address | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    capabilities: Capabilities | None = None
    priority: Int32 | None = None
    active: bool = True


class LocationUpdate(Input):
    name: Name | None = None
    address: Address | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    capabilities: Capabilities | None = None
    priority: Int32 | None = None
    active: bool | None = None
    version: int | None = None


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


LocationList = Annotated[list[LocationOut], Field()]
