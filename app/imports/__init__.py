"""Imports: the use case "load a retailer's file" — products, prices and stock in one file.

`POST /v1/catalog/import` and `GET /v1/catalog/imports/{id}` (the paths stay the catalog's: it
is the catalog's file format). The package sits above catalog, pricing and inventory, whose
services it calls; none of them imports it.

    models.py        catalog_imports: background jobs, their file, progress and errors
    jobs.py          the use case: inline for small files, a job (API process + worker) for large ones
    stock_prices.py  the `price` and `stock` columns, through the pricing and inventory services
    router.py        the two routes (thin)

What a row says, the file formats and the product upsert are the catalog's own:
app/catalog/import_rows.py, import_formats.py and importer.py (catalog + core only).
"""
