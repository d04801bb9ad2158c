"""Pure functions over tables: results folder in, Summary (data) out, then rendering."""
