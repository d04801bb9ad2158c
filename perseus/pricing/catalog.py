"""Instance prices: the bundled catalog (``catalog.toml``, shipped in the package) and the local cache.

``perseus prices refresh`` writes live AWS prices to a cache file (``$XDG_CACHE_HOME/perseus/prices.json``,
default ``~/.cache/perseus/prices.json``). ``lookup`` prefers a *fresh* cached price (fetched within
``MAX_CACHE_AGE_DAYS``) for the same provider, instance, region and market, and falls back to the bundled
catalog otherwise. Spot prices exist only in the cache (the median over availability zones). Every
``Price`` carries its source and date, so a report always says where its price came from; a run records
the price it used in its manifest, and ``perseus report`` reuses that one.
"""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path

MAX_CACHE_AGE_DAYS = 30
CACHE_FORMAT = 1
BUNDLED = "bundled"
CACHED = "cache"


@dataclass(frozen=True)
class Price:
    name: str
    provider: str
    region: str
    market: str
    usd_per_hour: float
    gpu: str | None
    gpus: int
    gpu_memory_gb: float
    vcpus: int
    memory_gb: float
    source: str
    date: str
    note: str = ""
    origin: str = BUNDLED  # bundled | cache

    @classmethod
    def from_dict(cls, data: dict) -> Price:
        """A Price from a manifest's ``price`` (unknown keys ignored, missing optional ones defaulted)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@lru_cache(maxsize=1)
def catalog() -> tuple[Price, ...]:
    """The bundled catalog. The file-level ``source``/``date`` apply unless an instance sets its own."""
    data = tomllib.loads(resources.files("perseus.pricing").joinpath("catalog.toml").read_text(encoding="utf-8"))
    return tuple(
        Price(
            name=item["name"],
            provider=item["provider"],
            region=item["region"],
            market=item["market"],
            usd_per_hour=float(item["usd_per_hour"]),
            gpu=item.get("gpu"),
            gpus=int(item.get("gpus", 0)),
            gpu_memory_gb=float(item.get("gpu_memory_gb", 0)),
            vcpus=int(item["vcpus"]),
            memory_gb=float(item["memory_gb"]),
            source=item.get("source", data["source"]),
            date=str(item.get("date", data["date"])),
            note=item.get("note", ""),
        )
        for item in data["instance"]
    )


# --- the cache -----------------------------------------------------------------------------------


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "perseus" / "prices.json"


def read_cache(path: Path | None = None) -> dict | None:
    """The cache document, or None when it is absent or unreadable (the bundled catalog still works)."""
    path = Path(path) if path is not None else cache_path()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("prices"), list):
        return None
    return doc


def write_cache(entries: list[dict], fetched: str, path: Path | None = None) -> Path:
    """Merge ``entries`` into the cache (keyed by provider, name, region, market) and write it atomically."""
    path = Path(path) if path is not None else cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    old = read_cache(path) or {"prices": []}
    merged = {_key(e): e for e in old["prices"] if isinstance(e, dict) and _valid_entry(e)}
    merged.update({_key(e): e for e in entries})
    doc = {"format": CACHE_FORMAT, "fetched": fetched, "prices": sorted(merged.values(), key=_key)}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    return path


def _key(entry: dict) -> tuple[str, str, str, str]:
    return (entry["provider"], entry["name"], entry["region"], entry["market"])


def _valid_entry(entry: dict) -> bool:
    try:
        _key(entry)
        float(entry["usd_per_hour"])
        str(entry["fetched"])
    except (KeyError, TypeError, ValueError):
        return False
    return True


def _fetched_date(entry: dict) -> date | None:
    try:
        return datetime.fromisoformat(str(entry["fetched"]).replace("Z", "+00:00")).date()
    except ValueError:
        return None


def is_fresh(price: Price, today: date | None = None, max_age_days: int = MAX_CACHE_AGE_DAYS) -> bool:
    """Whether a cached price is recent enough for ``lookup`` to prefer it over the bundled one."""
    if price.origin != CACHED:
        return False
    try:
        fetched = date.fromisoformat(price.date)
    except ValueError:
        return False
    today = today or datetime.now(UTC).date()
    return today - fetched <= timedelta(days=max_age_days)


def cached(path: Path | None = None) -> tuple[Price, ...]:
    """Every usable price in the cache, fresh or not; specs from the bundled entry of the same name."""
    doc = read_cache(path)
    if doc is None:
        return ()
    specs = {p.name: p for p in catalog()}
    out = []
    for e in doc["prices"]:
        if not isinstance(e, dict) or not _valid_entry(e) or _fetched_date(e) is None:
            continue
        spec = specs.get(e["name"])
        out.append(
            Price(
                name=e["name"],
                provider=e["provider"],
                region=e["region"],
                market=e["market"],
                usd_per_hour=float(e["usd_per_hour"]),
                gpu=spec.gpu if spec else None,
                gpus=spec.gpus if spec else int(e.get("gpus") or 0),
                gpu_memory_gb=spec.gpu_memory_gb if spec else float(e.get("gpu_memory_gb") or 0),
                vcpus=spec.vcpus if spec else int(e.get("vcpus") or 0),
                memory_gb=spec.memory_gb if spec else float(e.get("memory_gb") or 0),
                source=str(e.get("source", "AWS price APIs")) + " (cached by `perseus prices refresh`)",
                date=_fetched_date(e).isoformat(),  # type: ignore[union-attr]
                note=str(e.get("note", "")),
                origin=CACHED,
            )
        )
    return tuple(out)


# --- lookup ------------------------------------------------------------------------------------------


def lookup(
    provider: str,
    instance: str,
    region: str,
    market: str,
    *,
    cache: Path | None = None,
    use_cache: bool = True,
    today: date | None = None,
) -> Price | None:
    """A fresh cached price when there is one, else the bundled one, else None."""
    key = (provider, instance, region, market)
    if use_cache:
        for price in cached(cache):
            if (price.provider, price.name, price.region, price.market) == key and is_fresh(price, today):
                return price
    for price in catalog():
        if (price.provider, price.name, price.region, price.market) == key:
            return price
    return None


def known(provider: str, region: str, market: str, *, cache: Path | None = None) -> list[str]:
    """Instances with a usable price: bundled, or fresh in the cache."""
    names = {p.name for p in catalog() if (p.provider, p.region, p.market) == (provider, region, market)}
    names |= {
        p.name for p in cached(cache) if (p.provider, p.region, p.market) == (provider, region, market) and is_fresh(p)
    }
    return sorted(names)
