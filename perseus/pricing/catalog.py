"""The bundled price catalog (``catalog.toml``, shipped in the package)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


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


@lru_cache(maxsize=1)
def catalog() -> tuple[Price, ...]:
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
            source=data["source"],
            date=data["date"],
        )
        for item in data["instance"]
    )


def lookup(provider: str, instance: str, region: str, market: str) -> Price | None:
    for price in catalog():
        if (price.provider, price.name, price.region, price.market) == (provider, instance, region, market):
            return price
    return None


def known(provider: str, region: str, market: str) -> list[str]:
    return sorted(p.name for p in catalog() if (p.provider, p.region, p.market) == (provider, region, market))
