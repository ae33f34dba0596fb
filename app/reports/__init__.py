"""Reports (sales, customers, inventory), attribution and recommendations: reads over the other
domains' tables, set-based in the database, bounded in size. Nothing here writes."""
