"""Live AWS prices: on-demand from the Price List API, spot from the EC2 spot price history.

The functions take boto3 clients, so tests hand them clients wrapped in ``botocore.stub.Stubber``
(moto does not implement the Pricing API). Nothing here reads, prints or stores credentials: boto3
finds them itself, and errors are reported by type and AWS error code only.
"""

from __future__ import annotations

import contextlib
import json
import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)

PROVIDER = "aws"
# The Price List API is served from these regions only; it prices every region.
PRICING_ENDPOINT_REGION = "us-east-1"
SPOT_PRODUCT = "Linux/UNIX"
ON_DEMAND_SOURCE = "AWS Price List API (pricing.get_products; Linux, shared tenancy)"
SPOT_SOURCE = "EC2 spot price history (Linux/UNIX; median of the latest price per availability zone)"

# The Price List API filters on the location's display name.
LOCATIONS = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)",
    "ca-central-1": "Canada (Central)",
    "sa-east-1": "South America (Sao Paulo)",
    "eu-west-1": "EU (Ireland)",
    "eu-west-2": "EU (London)",
    "eu-west-3": "EU (Paris)",
    "eu-central-1": "EU (Frankfurt)",
    "eu-north-1": "EU (Stockholm)",
    "eu-south-1": "EU (Milan)",
    "ap-south-1": "Asia Pacific (Mumbai)",
    "ap-northeast-1": "Asia Pacific (Tokyo)",
    "ap-northeast-2": "Asia Pacific (Seoul)",
    "ap-northeast-3": "Asia Pacific (Osaka)",
    "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-southeast-2": "Asia Pacific (Sydney)",
}

# ClientError codes that mean "your credentials are missing, wrong or expired" (exit 2, like bad input).
CREDENTIAL_ERROR_CODES = {
    "AuthFailure",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "MissingAuthenticationToken",
}
# What a fetch may raise for want of credentials, network or permission; callers catch exactly these.
FETCH_ERRORS = (BotoCoreError, ClientError)


@dataclass(frozen=True)
class OnDemand:
    instance: str
    region: str
    usd_per_hour: float
    sku: str
    attributes: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Spot:
    instance: str
    region: str
    min_usd_per_hour: float
    median_usd_per_hour: float
    zones: dict[str, float]  # availability zone -> latest price
    latest: str  # UTC ISO timestamp of the newest price used


# --- clients and errors ---------------------------------------------------------------------------


def clients(region: str, session=None):
    """(pricing client on its us-east-1 endpoint, ec2 client in ``region``), with short timeouts."""
    import boto3
    from botocore.config import Config

    session = session or boto3.session.Session()
    config = Config(connect_timeout=5, read_timeout=20, retries={"max_attempts": 2, "mode": "standard"})
    return (
        session.client("pricing", region_name=PRICING_ENDPOINT_REGION, config=config),
        session.client("ec2", region_name=region, config=config),
    )


def describe_error(exc: Exception) -> tuple[str, int]:
    """One line for stderr and the exit code: 2 for missing/invalid credentials, 1 otherwise."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (
            "no AWS credentials found (configure them with `aws configure`, AWS_PROFILE or the AWS_* "
            "environment variables); the bundled catalog still works",
            2,
        )
    if isinstance(exc, EndpointConnectionError):
        return f"cannot reach AWS ({_one_line(exc)}); the bundled catalog still works", 1
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", "?"))
        op = getattr(exc, "operation_name", "?")
        if code in CREDENTIAL_ERROR_CODES:
            return f"AWS rejected the credentials ({code} on {op}); the bundled catalog still works", 2
        return f"AWS error {code} on {op}: {_one_line(exc.response.get('Error', {}).get('Message', ''))}", 1
    return f"AWS request failed ({type(exc).__name__}: {_one_line(exc)})", 1


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


# --- on-demand: the Price List API --------------------------------------------------------------------


def product_filters(instance: str, region: str) -> list[dict]:
    """Filters that select the one Linux, shared-tenancy, on-demand SKU of ``instance`` in ``region``."""
    location = LOCATIONS.get(region)
    place = (
        {"Type": "TERM_MATCH", "Field": "location", "Value": location}
        if location
        else {"Type": "TERM_MATCH", "Field": "regionCode", "Value": region}
    )
    return [
        {"Type": "TERM_MATCH", "Field": "instanceType", "Value": instance},
        place,
        {"Type": "TERM_MATCH", "Field": "operatingSystem", "Value": "Linux"},
        {"Type": "TERM_MATCH", "Field": "tenancy", "Value": "Shared"},
        {"Type": "TERM_MATCH", "Field": "preInstalledSw", "Value": "NA"},
        {"Type": "TERM_MATCH", "Field": "capacitystatus", "Value": "Used"},
        {"Type": "TERM_MATCH", "Field": "licenseModel", "Value": "No License required"},
    ]


def parse_product(item: str | dict) -> tuple[str, dict, list[float]]:
    """(sku, attributes, hourly USD prices) of one PriceList item (a JSON string in the API)."""
    product = json.loads(item) if isinstance(item, str) else item
    sku = str(product.get("product", {}).get("sku", ""))
    attributes = dict(product.get("product", {}).get("attributes", {}))
    hourly = []
    for term in product.get("terms", {}).get("OnDemand", {}).values():
        for dim in term.get("priceDimensions", {}).values():
            usd = dim.get("pricePerUnit", {}).get("USD")
            if usd is not None and dim.get("unit") == "Hrs":
                hourly.append(float(usd))
    return sku, attributes, hourly


def on_demand_price(pricing_client, instance: str, region: str) -> OnDemand | None:
    """The on-demand Linux price of ``instance`` in ``region``, or None when the API has no such SKU.

    Reads every page; a zero price (a placeholder SKU) never wins over a real one.
    """
    paginator = pricing_client.get_paginator("get_products")
    found: list[OnDemand] = []
    pages = paginator.paginate(
        ServiceCode="AmazonEC2", Filters=product_filters(instance, region), FormatVersion="aws_v1"
    )
    for page in pages:
        for item in page.get("PriceList", []):
            sku, attributes, hourly = parse_product(item)
            if attributes.get("instanceType", instance) != instance:
                continue
            for usd in hourly:
                found.append(OnDemand(instance, region, usd, sku, _spec(attributes)))
    priced = [p for p in found if p.usd_per_hour > 0]
    if not priced:
        return None
    return min(priced, key=lambda p: p.usd_per_hour)


def _spec(attributes: dict) -> dict:
    """vCPUs, memory and GPUs from a product's attributes ("16 GiB" -> 16.0); what cannot be read is left out."""
    out = {}
    for key, name, cast in (("vcpus", "vcpu", int), ("gpus", "gpu", int)):
        with contextlib.suppress(KeyError, ValueError, IndexError):
            out[key] = cast(str(attributes[name]).split()[0])
    for key, name in (("memory_gb", "memory"), ("gpu_memory_gb", "gpuMemory")):
        with contextlib.suppress(KeyError, ValueError, IndexError):
            out[key] = float(str(attributes[name]).split()[0].replace(",", ""))
    return out


# --- spot: EC2 spot price history --------------------------------------------------------------------


def latest_per_zone(history: list[dict]) -> dict[tuple[str, str], tuple[float, datetime]]:
    """(instance, zone) -> (price, timestamp) of the newest entry; SpotPrice arrives as a string."""
    latest: dict[tuple[str, str], tuple[float, datetime]] = {}
    for h in history:
        key = (h["InstanceType"], h["AvailabilityZone"])
        ts = h["Timestamp"]
        if key not in latest or ts > latest[key][1]:
            latest[key] = (float(h["SpotPrice"]), ts)
    return latest


def spot_prices(ec2_client, instances: list[str], region: str, now: datetime | None = None) -> dict[str, Spot]:
    """Per instance: the latest spot price in each availability zone, their minimum and median."""
    now = now or datetime.now(UTC)
    paginator = ec2_client.get_paginator("describe_spot_price_history")
    history = []
    for page in paginator.paginate(InstanceTypes=list(instances), ProductDescriptions=[SPOT_PRODUCT], StartTime=now):
        history.extend(h for h in page.get("SpotPriceHistory", []) if h.get("ProductDescription") == SPOT_PRODUCT)
    by_instance: dict[str, dict[str, tuple[float, datetime]]] = {}
    for (instance, zone), value in latest_per_zone(history).items():
        by_instance.setdefault(instance, {})[zone] = value
    out = {}
    for instance, zones in by_instance.items():
        prices = [p for p, _ in zones.values()]
        newest = max(ts for _, ts in zones.values())
        out[instance] = Spot(
            instance=instance,
            region=region,
            min_usd_per_hour=min(prices),
            median_usd_per_hour=float(statistics.median(prices)),
            zones={z: p for z, (p, _) in sorted(zones.items())},
            latest=_iso(newest),
        )
    return out


def _iso(ts: datetime) -> str:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- refresh: both, as cache entries ---------------------------------------------------------------------


@dataclass(frozen=True)
class Refresh:
    fetched: str  # UTC ISO
    region: str
    on_demand: dict[str, OnDemand]
    spot: dict[str, Spot]
    missing: list[str]  # instances the Price List API had no on-demand price for

    def cache_entries(self) -> list[dict]:
        entries = []
        for p in self.on_demand.values():
            entries.append(
                {
                    "provider": PROVIDER,
                    "name": p.instance,
                    "region": p.region,
                    "market": "on-demand",
                    "usd_per_hour": p.usd_per_hour,
                    "fetched": self.fetched,
                    "source": ON_DEMAND_SOURCE,
                    "sku": p.sku,
                    **p.attributes,
                }
            )
        for s in self.spot.values():
            entries.append(
                {
                    "provider": PROVIDER,
                    "name": s.instance,
                    "region": s.region,
                    "market": "spot",
                    "usd_per_hour": s.median_usd_per_hour,
                    "min_usd_per_hour": s.min_usd_per_hour,
                    "zones": s.zones,
                    "latest": s.latest,
                    "fetched": self.fetched,
                    "source": SPOT_SOURCE,
                    **(self.on_demand[s.instance].attributes if s.instance in self.on_demand else {}),
                }
            )
        return entries

    def as_dict(self) -> dict:
        return asdict(self)


def refresh(
    pricing_client, ec2_client, instances: list[str], region: str, *, spot: bool = True, now: datetime | None = None
) -> Refresh:
    """Fetch on-demand (and spot) prices for ``instances`` in ``region``. Raises FETCH_ERRORS."""
    now = now or datetime.now(UTC)
    on_demand, missing = {}, []
    for instance in instances:
        price = on_demand_price(pricing_client, instance, region)
        if price is None:
            missing.append(instance)
        else:
            on_demand[instance] = price
    spots = spot_prices(ec2_client, instances, region, now) if spot and instances else {}
    return Refresh(fetched=_iso(now), region=region, on_demand=on_demand, spot=spots, missing=missing)
