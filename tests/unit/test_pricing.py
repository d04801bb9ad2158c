"""Prices: the bundled catalog, the cache, and live AWS prices through real boto3 clients.

AWS is the edge this machine cannot reach: the clients are real botocore clients wrapped in
``botocore.stub.Stubber`` (a test double that validates every request and response against the service
model). moto does not implement the Pricing API.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from botocore.stub import ANY, Stubber
from typer.testing import CliRunner

from perseus.pricing import aws, catalog
from perseus.pricing import cli as prices_cli

FAKE_KEY_ID = "AKIAPERSEUSTESTKEY01"
FAKE_SECRET = "perseus/FAKE+secret+never+printed+0123456789"  # noqa: S105 - a test double's fake key
NOW = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def isolated_aws(tmp_path, monkeypatch):
    """No real credentials, config or cache reach these tests, and nothing reaches the network."""
    for var in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def session(with_credentials: bool = True) -> boto3.session.Session:
    if with_credentials:
        return boto3.session.Session(aws_access_key_id=FAKE_KEY_ID, aws_secret_access_key=FAKE_SECRET)
    return boto3.session.Session()


def price_item(instance: str, usd: str, sku: str, location: str = "US East (N. Virginia)") -> str:
    """One PriceList entry as the API returns it: a JSON *string*."""
    term, dim = f"{sku}.JRTCKXETXF", f"{sku}.JRTCKXETXF.6YS6EN2CT7"
    return json.dumps(
        {
            "product": {
                "productFamily": "Compute Instance",
                "attributes": {
                    "instanceType": instance,
                    "location": location,
                    "operatingSystem": "Linux",
                    "tenancy": "Shared",
                    "preInstalledSw": "NA",
                    "capacitystatus": "Used",
                    "licenseModel": "No License required",
                    "vcpu": "4",
                    "memory": "16 GiB",
                    "gpu": "1",
                    "gpuMemory": "16 GiB",
                    "regionCode": "us-east-1",
                },
                "sku": sku,
            },
            "serviceCode": "AmazonEC2",
            "terms": {
                "OnDemand": {
                    term: {
                        "priceDimensions": {
                            dim: {
                                "unit": "Hrs",
                                "endRange": "Inf",
                                "description": f"${usd} per On Demand Linux {instance} Instance Hour",
                                "appliesTo": [],
                                "rateCode": dim,
                                "beginRange": "0",
                                "pricePerUnit": {"USD": usd},
                            }
                        },
                        "sku": sku,
                        "effectiveDate": "2026-01-01T00:00:00Z",
                        "offerTermCode": "JRTCKXETXF",
                        "termAttributes": {},
                    }
                }
            },
            "version": "20260101000000",
            "publicationDate": "2026-01-01T00:00:00Z",
        }
    )


def get_products_params(instance: str, token: str | None = None) -> dict:
    filters = aws.product_filters(instance, "us-east-1")
    params = {"ServiceCode": "AmazonEC2", "Filters": filters, "FormatVersion": "aws_v1"}
    if token:
        params["NextToken"] = token
    return params


def stub_on_demand(stub: Stubber, instance: str, usd: str, sku: str) -> None:
    """Two pages: the first empty with a NextToken (the API does this), the second with the SKU."""
    stub.add_response(
        "get_products",
        {"FormatVersion": "aws_v1", "PriceList": [], "NextToken": f"{instance}-page2"},
        get_products_params(instance),
    )
    stub.add_response(
        "get_products",
        {"FormatVersion": "aws_v1", "PriceList": [price_item(instance, usd, sku)]},
        get_products_params(instance, f"{instance}-page2"),
    )


def spot(instance: str, zone: str, price: str, minutes_ago: int) -> dict:
    return {
        "AvailabilityZone": zone,
        "InstanceType": instance,
        "ProductDescription": "Linux/UNIX",
        "SpotPrice": price,  # a string in the API
        "Timestamp": NOW - timedelta(minutes=minutes_ago),
    }


def stub_spot(stub: Stubber, instances: list[str], start=NOW) -> None:
    """Three zones over two pages; us-east-1a has an older, higher price that must lose to the newer one."""
    params = {"InstanceTypes": instances, "ProductDescriptions": ["Linux/UNIX"], "StartTime": start}
    stub.add_response(
        "describe_spot_price_history",
        {
            "SpotPriceHistory": [
                spot("g4dn.xlarge", "us-east-1a", "0.3000", 90),
                spot("g4dn.xlarge", "us-east-1b", "0.2200", 10),
            ],
            "NextToken": "spot-page2",
        },
        params,
    )
    stub.add_response(
        "describe_spot_price_history",
        {
            "SpotPriceHistory": [
                spot("g4dn.xlarge", "us-east-1a", "0.2000", 5),
                spot("g4dn.xlarge", "us-east-1c", "0.2600", 20),
            ]
        },
        {**params, "NextToken": "spot-page2"},
    )


def stubbed_clients():
    s = session()
    pricing = s.client("pricing", region_name="us-east-1")
    ec2 = s.client("ec2", region_name="us-east-1")
    return pricing, Stubber(pricing), ec2, Stubber(ec2)


# -- the bundled catalog and the cache ------------------------------------------------------------------------
def test_bundled_catalog_sources_and_dates():
    by_name = {p.name: p for p in catalog.catalog()}
    assert by_name["g4dn.xlarge"].usd_per_hour == 0.526
    assert by_name["g4dn.xlarge"].date == "2026-01-21"  # the file-level date
    for cpu in ("c7i.xlarge", "c7i.2xlarge", "m7i.xlarge"):
        p = by_name[cpu]
        assert p.gpus == 0
        assert p.gpu is None
        assert "approximate" in p.note
        assert "not fetched" in p.source  # a per-instance source overrides the file's
    assert catalog.lookup("aws", "g4dn.xlarge", "us-east-1", "on-demand").origin == catalog.BUNDLED
    assert catalog.lookup("aws", "g4dn.xlarge", "us-east-1", "spot") is None


def test_lookup_prefers_a_fresh_cached_price(tmp_path):
    path = tmp_path / "prices.json"
    entry = {"provider": "aws", "name": "g4dn.xlarge", "region": "us-east-1", "market": "on-demand"}
    catalog.write_cache([{**entry, "usd_per_hour": 0.5, "fetched": "2026-02-01T12:00:00Z", "source": "API"}], "x", path)
    fresh = catalog.lookup("aws", "g4dn.xlarge", "us-east-1", "on-demand", cache=path, today=date(2026, 2, 10))
    assert fresh.usd_per_hour == 0.5
    assert fresh.origin == catalog.CACHED
    assert fresh.date == "2026-02-01"
    assert fresh.gpu == "T4"  # specs from the bundled entry
    stale = catalog.lookup("aws", "g4dn.xlarge", "us-east-1", "on-demand", cache=path, today=date(2026, 6, 1))
    assert stale.usd_per_hour == 0.526
    assert stale.origin == catalog.BUNDLED
    bundled = catalog.lookup("aws", "g4dn.xlarge", "us-east-1", "on-demand", cache=path, use_cache=False)
    assert bundled.usd_per_hour == 0.526


def test_a_broken_cache_leaves_the_bundled_catalog_working(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text("{not json", encoding="utf-8")
    assert catalog.read_cache(path) is None
    assert catalog.lookup("aws", "g5.xlarge", "us-east-1", "on-demand", cache=path).usd_per_hour == 1.006


def test_manifest_price_round_trip():
    p = catalog.lookup("aws", "c7i.xlarge", "us-east-1", "on-demand")
    assert catalog.Price.from_dict({**p.__dict__, "unknown": 1}) == p
    old = {k: v for k, v in p.__dict__.items() if k not in ("note", "origin")}  # an older manifest
    assert catalog.Price.from_dict(old).usd_per_hour == p.usd_per_hour


# -- AWS, stubbed -------------------------------------------------------------------------------------------
def test_parse_product_reads_the_json_string():
    sku, attributes, hourly = aws.parse_product(price_item("g5.xlarge", "1.0060000000", "SKU5"))
    assert sku == "SKU5"
    assert attributes["instanceType"] == "g5.xlarge"
    assert hourly == [1.006]


def test_on_demand_across_two_pages():
    pricing, stub, _, _ = stubbed_clients()
    stub_on_demand(stub, "g4dn.xlarge", "0.5260000000", "SKU4")
    with stub:
        price = aws.on_demand_price(pricing, "g4dn.xlarge", "us-east-1")
    stub.assert_no_pending_responses()
    assert price.usd_per_hour == pytest.approx(0.526)
    assert price.sku == "SKU4"
    assert price.attributes == {"vcpus": 4, "gpus": 1, "memory_gb": 16.0, "gpu_memory_gb": 16.0}


def test_on_demand_filters_name_the_location():
    filters = {f["Field"]: f["Value"] for f in aws.product_filters("g5.xlarge", "us-east-1")}
    assert filters == {
        "instanceType": "g5.xlarge",
        "location": "US East (N. Virginia)",
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
        "licenseModel": "No License required",
    }
    assert {f["Field"]: f["Value"] for f in aws.product_filters("xx", "mars-1")}["regionCode"] == "mars-1"


def test_spot_latest_per_zone_min_and_median():
    _, _, ec2, stub = stubbed_clients()
    stub_spot(stub, ["g4dn.xlarge"])
    with stub:
        prices = aws.spot_prices(ec2, ["g4dn.xlarge"], "us-east-1", now=NOW)
    stub.assert_no_pending_responses()
    s = prices["g4dn.xlarge"]
    assert s.zones == {"us-east-1a": 0.2, "us-east-1b": 0.22, "us-east-1c": 0.26}  # 1a: the newer 0.20, not 0.30
    assert s.min_usd_per_hour == pytest.approx(0.2)
    assert s.median_usd_per_hour == pytest.approx(0.22)
    assert s.latest == "2026-02-01T11:55:00Z"


def test_refresh_builds_cache_entries():
    pricing, pstub, ec2, estub = stubbed_clients()
    stub_on_demand(pstub, "g4dn.xlarge", "0.5260000000", "SKU4")
    pstub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": []}, get_products_params("zz.none"))
    stub_spot(estub, ["g4dn.xlarge", "zz.none"])
    with pstub, estub:
        r = aws.refresh(pricing, ec2, ["g4dn.xlarge", "zz.none"], "us-east-1", now=NOW)
    assert r.missing == ["zz.none"]
    entries = {e["market"]: e for e in r.cache_entries()}
    assert entries["on-demand"]["usd_per_hour"] == pytest.approx(0.526)
    assert entries["spot"]["usd_per_hour"] == pytest.approx(0.22)  # the median
    assert entries["spot"]["min_usd_per_hour"] == pytest.approx(0.2)
    assert all(e["fetched"] == "2026-02-01T12:00:00Z" for e in entries.values())


def test_no_credentials_is_one_line_and_exit_2():
    pricing = session(with_credentials=False).client("pricing", region_name="us-east-1")
    with pytest.raises(NoCredentialsError) as info:
        aws.on_demand_price(pricing, "g4dn.xlarge", "us-east-1")
    message, code = aws.describe_error(info.value)
    assert code == 2
    assert "\n" not in message
    assert "no AWS credentials" in message


def test_rejected_credentials_and_network_errors():
    pricing, stub, _, _ = stubbed_clients()
    stub.add_client_error("get_products", "UnrecognizedClientException", "The security token is invalid", 400)
    with stub, pytest.raises(ClientError) as info:
        aws.on_demand_price(pricing, "g4dn.xlarge", "us-east-1")
    message, code = aws.describe_error(info.value)
    assert code == 2
    assert "UnrecognizedClientException" in message
    message, code = aws.describe_error(
        EndpointConnectionError(endpoint_url="https://api.pricing.us-east-1.amazonaws.com/")
    )
    assert code == 1
    assert "cannot reach AWS" in message


# -- the CLI -----------------------------------------------------------------------------------------------
def invoke(args: list[str]):
    return CliRunner().invoke(prices_cli.app, args)


def test_cli_without_credentials_exits_2_with_one_line(tmp_path):
    cache = tmp_path / "prices.json"
    result = invoke(["refresh", "--instance", "g4dn.xlarge", "--cache", str(cache)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("perseus prices refresh: no AWS credentials")
    assert "Traceback" not in result.output
    assert not cache.exists()
    listing = invoke(["--cache", str(cache)])  # the bundled catalog keeps working
    assert listing.exit_code == 0
    assert "g4dn.xlarge" in listing.stdout


def test_cli_refresh_writes_the_cache_and_never_the_secret(tmp_path, monkeypatch):
    pricing, pstub, ec2, estub = stubbed_clients()
    stub_on_demand(pstub, "g4dn.xlarge", "0.5010000000", "SKU4")
    stub_spot(estub, ["g4dn.xlarge"], start=ANY)
    monkeypatch.setattr(aws, "clients", lambda region, session=None: (pricing, ec2))
    cache = tmp_path / "prices.json"
    with pstub, estub:
        result = invoke(["refresh", "--region", "us-east-1", "--instance", "g4dn.xlarge", "--cache", str(cache)])
    assert result.exit_code == 0, result.output
    assert "0.501" in result.stdout
    assert str(cache) in result.stdout.replace("\n", "")
    text = cache.read_text(encoding="utf-8")
    doc = json.loads(text)
    markets = {e["market"]: e for e in doc["prices"]}
    assert markets["on-demand"]["usd_per_hour"] == pytest.approx(0.501)
    assert markets["spot"]["usd_per_hour"] == pytest.approx(0.22)
    for secret in (FAKE_SECRET, FAKE_KEY_ID):
        assert secret not in text
        assert secret not in result.output
    # the listing shows the cached prices with their date, and lookup uses them
    listing = invoke(["--cache", str(cache), "--gpu", "T4"])
    assert listing.exit_code == 0
    assert "spot" in listing.stdout
    assert "last refreshed" in listing.stdout
    assert FAKE_SECRET not in listing.output
    fetched = date.fromisoformat(doc["fetched"][:10])
    assert catalog.lookup("aws", "g4dn.xlarge", "us-east-1", "spot", cache=cache, today=fetched).usd_per_hour == 0.22


def test_cli_listing_filters():
    result = invoke(["--gpu", "t4"])
    assert result.exit_code == 0
    assert "g4dn.xlarge" in result.stdout
    assert "g5.xlarge" not in result.stdout
    assert "2026-01-21" in result.stdout
    cpu = invoke(["--gpu", "none", "--region", "us-east-1", "--provider", "aws"])
    assert "c7i.xlarge" in cpu.stdout
    assert "approximate" in cpu.stdout
    assert "g4dn.xlarge" not in cpu.stdout
    assert "cache: none" in cpu.stdout
    assert "no price matches" in invoke(["--region", "mars-1"]).stdout


@pytest.mark.parametrize("width", [80, 100, 240])
def test_cli_listing_fits_the_terminal(monkeypatch, width):
    monkeypatch.setenv("COLUMNS", str(width))
    result = invoke(["--region", "us-east-1"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= width
    header = next(line for line in lines if "instance" in line)
    assert "$/h" in header and "GPU" in header
    for name in ("g4dn.xlarge", "p5.48xlarge", "c7i.2xlarge"):  # names and prices never cut
        assert any(name in line for line in lines), name
    if width >= 240:
        assert "source" in header and "not shown" not in result.stdout
    else:  # what did not fit is said under the table: the sources once each, the rest named
        assert "source" not in header
        assert any(line.startswith("source: AWS public on-demand price list") for line in lines)
        assert "not shown, the terminal is too narrow:" in result.stdout
