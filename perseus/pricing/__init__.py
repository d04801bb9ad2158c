"""Instance prices: a bundled catalog with its source and date."""
