"""Scenario loading and validation: every error names the file and the field, as `FILE: FIELD: reason`."""

from __future__ import annotations

import copy
import os
import re
import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from perseus.checks import check_price, prepare, worker_options
from perseus.errors import InputError, did_you_mean
from perseus.scenario import Scenario, load, parse, with_overrides
from perseus.server.repository import check_models

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS = REPO_ROOT / "model_repository"
SRC = "x.toml"

BASE_TOML = """
name = "t"

[server]
model_repository = "models"

[run]
duration_s = 4
warmup_s = 1

[pricing]
instance = "g4dn.xlarge"

[[tenants]]
name = "vision"
model = "resnet_tiny"
sla_ms = 100
[tenants.load]
arrival = "poisson"
rate = 25

[[tenants]]
name = "series"
model = "lstm_tiny"
sla_ms = 100
sla_percentile = 95
[tenants.load]
arrival = "constant"
rate = 20
[tenants.server]
dynamic_batching = true
"""
BASE = tomllib.loads(BASE_TOML)


def _ids(value):
    """Parametrize ids: the field name, not '<lambda>'."""
    return value if isinstance(value, str) else "case"


def mutated(change: Callable[[dict], object]) -> dict:
    data = copy.deepcopy(BASE)
    change(data)
    return data


def error_of(data: dict, source: str = SRC) -> InputError:
    with pytest.raises(InputError) as info:
        parse(data, source)
    return info.value


def test_base_scenario_is_valid():
    s = parse(copy.deepcopy(BASE), SRC)
    assert isinstance(s, Scenario)
    assert [t.name for t in s.tenants] == ["vision", "series"]
    assert s.tenant("series").server.dynamic_batching is True
    assert s.tenant("vision").sla_percentile == 99  # default


# -- unknown keys, at every level ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "field", "suggestion"),
    [
        (lambda d: d.update(nmae="t"), "nmae", "name"),
        (lambda d: d["server"].update(devcie="cpu"), "server.devcie", "device"),
        (lambda d: d["run"].update(sede=3), "run.sede", "seed"),
        (lambda d: d["pricing"].update(regoin="eu"), "pricing.regoin", "region"),
        (lambda d: d["tenants"][0].update(sla=5), "tenants[0].sla", "sla_ms"),
        (lambda d: d["tenants"][0].update(sla_percentil=99), "tenants[0].sla_percentil", "sla_percentile"),
        (lambda d: d["tenants"][1]["load"].update(rps=5), "tenants[1].load.rps", None),
        (lambda d: d["tenants"][1]["server"].update(instance=2), "tenants[1].server.instance", "instances"),
        (lambda d: d["run"].update(colour=2), "run.colour", None),  # nothing close: no guess
    ],
    ids=_ids,
)
def test_unknown_keys(change, field, suggestion):
    err = error_of(mutated(change))
    hint = f"; did you mean '{suggestion}'?" if suggestion else ""
    assert str(err) == f"{SRC}: {field}: unknown key{hint}"
    assert err.field == field
    assert err.exit_code == 2


# -- wrong types -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda d: d["run"].update(duration_s="long"), "run.duration_s", "valid number"),
        (lambda d: d["run"].update(seed=1.5), "run.seed", "valid integer"),
        (lambda d: d["run"].update(baselines="maybe"), "run.baselines", "valid boolean"),
        (lambda d: d["tenants"][0].update(sla_ms="fast"), "tenants[0].sla_ms", "valid number"),
        (lambda d: d["tenants"][1].update(batch=2.5), "tenants[1].batch", "valid integer"),
        (lambda d: d["tenants"][0]["load"].update(rate="many"), "tenants[0].load.rate", "valid number"),
        (lambda d: d["tenants"][1]["server"].update(instances="two"), "tenants[1].server.instances", "valid integer"),
        (lambda d: d.update(tenants={"name": "x"}), "tenants", "valid list"),
        (lambda d: d["tenants"][0].update(load=5), "tenants[0].load", "valid dictionary"),
    ],
    ids=_ids,
)
def test_wrong_types(change, field, words):
    err = error_of(mutated(change))
    assert str(err).startswith(f"{SRC}: {field}: ")
    assert words in err.reason
    assert "(got " in err.reason  # shows what was given


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["tenants"][0]["load"].update(rate=True), "tenants[0].load.rate"),
        (lambda d: d["run"].update(baselines="yes"), "run.baselines"),
        (lambda d: d["run"].update(seed="1"), "run.seed"),
    ],
    ids=_ids,
)
def test_wrong_types_are_not_coerced(change, field):
    assert error_of(mutated(change)).field == field


# -- bounds ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["tenants"][0]["load"].update(rate=0), "tenants[0].load.rate: must be > 0"),
        (lambda d: d["tenants"][1]["load"].update(rate=-2.5), "tenants[1].load.rate: must be > 0"),
        (lambda d: d["run"].update(duration_s=0), "run.duration_s: must be > 0"),
        (lambda d: d["run"].update(warmup_s=-1), "run.warmup_s: must be >= 0"),
        (lambda d: d["tenants"][0].update(sla_percentile=0), "tenants[0].sla_percentile: must be > 0"),
        (lambda d: d["tenants"][0].update(sla_percentile=100), "tenants[0].sla_percentile: must be < 100"),
        (lambda d: d["tenants"][0].update(sla_ms=0), "tenants[0].sla_ms: must be > 0"),
        (lambda d: d["tenants"][1].update(batch=0), "tenants[1].batch: must be >= 1"),
    ],
    ids=_ids,
)
def test_bounds(change, message):
    assert str(error_of(mutated(change))).startswith(f"{SRC}: {message} (got ")


def test_zero_rate_message_exactly():
    assert str(error_of(mutated(lambda d: d["tenants"][0]["load"].update(rate=0)))) == (
        "x.toml: tenants[0].load.rate: must be > 0 (got 0)"
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["tenants"][0]["load"].update(rate=float("inf")), "tenants[0].load.rate"),
        (lambda d: d["run"].update(duration_s=float("inf")), "run.duration_s"),
    ],
    ids=_ids,
)
def test_infinite_values_rejected(change, field):
    assert error_of(mutated(change)).field == field


# -- tenants ---------------------------------------------------------------------------------------
def test_duplicate_tenant_names():
    err = error_of(mutated(lambda d: d["tenants"][1].update(name="vision")))
    assert err.field == "tenants[1].name"
    assert str(err) == "x.toml: tenants[1].name: duplicate tenant name 'vision'"


@pytest.mark.parametrize("name", ["a/b", "..", "Vision", "", "-a", "a b", "ü"])
def test_bad_tenant_names(name):
    err = error_of(mutated(lambda d: d["tenants"][0].update(name=name)))
    assert err.field == "tenants[0].name"
    assert str(err).startswith("x.toml: tenants[0].name: must match ")


def test_bad_scenario_name():
    assert error_of(mutated(lambda d: d.update(name="../up"))).field == "name"


@pytest.mark.parametrize(
    ("load", "reason"),
    [
        ({"arrival": "closed", "rate": 3, "concurrency": 2}, "arrival 'closed' takes concurrency, not rate"),
        ({"arrival": "poisson"}, "arrival 'poisson' needs rate"),
        ({"arrival": "constant"}, "arrival 'constant' needs rate"),
        ({"arrival": "closed"}, "arrival 'closed' needs concurrency"),
        ({"arrival": "poisson", "rate": 3, "concurrency": 2}, "arrival 'poisson' takes rate, not concurrency"),
    ],
)
def test_arrival_needs(load, reason):
    err = error_of(mutated(lambda d: d["tenants"][1].update(load=load)))
    assert str(err) == f"x.toml: tenants[1].load: {reason}"


def test_unknown_arrival_lists_the_choices():
    err = error_of(mutated(lambda d: d["tenants"][0]["load"].update(arrival="ramp-up")))
    assert err.field == "tenants[0].load.arrival"
    assert "'poisson'" in err.reason
    assert "'closed'" in err.reason
    assert "(got 'ramp-up')" in err.reason


def test_closed_with_concurrency_is_valid():
    s = parse(mutated(lambda d: d["tenants"][0].update(load={"arrival": "closed", "concurrency": 4})), SRC)
    assert s.tenants[0].load.concurrency == 4
    assert s.tenants[0].load.rate is None


def test_empty_tenants():
    err = error_of(mutated(lambda d: d.update(tenants=[])))
    assert err.field == "tenants"
    assert str(err).startswith("x.toml: tenants: ")
    assert "at least 1" in err.reason


def test_missing_required_keys():
    assert str(error_of(mutated(lambda d: d.pop("tenants")))) == "x.toml: tenants: required key is missing"
    err = error_of(mutated(lambda d: d["tenants"][1].pop("sla_ms")))
    assert str(err) == "x.toml: tenants[1].sla_ms: required key is missing"


def test_literal_choices():
    err = error_of(mutated(lambda d: d["pricing"].update(market="reserved")))
    assert err.field == "pricing.market"
    assert "'on-demand'" in err.reason
    assert "'spot'" in err.reason


# -- files -----------------------------------------------------------------------------------------
def test_load_reads_a_file(tmp_path: Path):
    path = tmp_path / "good.toml"
    path.write_text(BASE_TOML)
    scenario, raw = load(path)
    assert scenario.name == "t"
    assert raw == BASE


def test_load_error_names_the_file(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text(BASE_TOML.replace("rate = 25", "rate = -1"))
    with pytest.raises(InputError) as info:
        load(path)
    assert str(info.value) == f"{path}: tenants[0].load.rate: must be > 0 (got -1)"


def test_toml_syntax_error(tmp_path: Path):
    path = tmp_path / "syntax.toml"
    path.write_text('name = "t"\n[run\nduration_s = 1\n')
    with pytest.raises(InputError) as info:
        load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: TOML syntax error: ")
    assert "line 2" in message
    assert "\n" not in message
    assert info.value.field is None


def test_missing_file(tmp_path: Path):
    path = tmp_path / "absent.toml"
    with pytest.raises(InputError) as info:
        load(path)
    assert str(info.value) == f"{path}: no such file"


def test_a_folder_is_not_a_scenario(tmp_path: Path):
    with pytest.raises(InputError) as info:
        load(tmp_path)
    assert str(info.value).startswith(f"{tmp_path}: cannot read")


# -- command-line overrides --------------------------------------------------------------------------
def test_overrides_are_validated():
    s = parse(copy.deepcopy(BASE), SRC)
    with pytest.raises(InputError) as info:
        with_overrides(s, duration_s=-1, source="cli.toml")
    # A bad flag is named as the flag, on the command line, not as a field of the file.
    assert str(info.value) == "command line: --duration: must be > 0 (got -1)"
    with pytest.raises(InputError) as info:
        with_overrides(s, warmup_s=-0.5, source="cli.toml")
    assert info.value.field == "--warmup"
    with pytest.raises(InputError) as info:
        with_overrides(s, repeat=0, source="cli.toml")
    assert info.value.field == "--repeat"


def test_trace_rate_is_a_count_for_the_local_launcher_only():
    s = parse(copy.deepcopy(BASE), SRC)
    assert s.run.trace_rate == 0
    assert with_overrides(s, trace_rate=10).run.trace_rate == 10
    with pytest.raises(InputError) as info:
        with_overrides(s, trace_rate=-1, source="cli.toml")
    assert str(info.value) == "command line: --trace-rate: must be >= 0 (got -1)"
    remote = mutated(lambda d: d.update(server={"launcher": "remote", "url": "http://127.0.0.1:8000"}))
    remote["run"] = {**remote.get("run", {}), "trace_rate": 1}
    with pytest.raises(InputError) as info:
        parse(remote, SRC)
    assert str(info.value) == f"{SRC}: run.trace_rate: needs launcher 'local' (launcher is 'remote')"


def test_traced_runs_refuse_distributed_load():
    traced = with_overrides(parse(copy.deepcopy(BASE), SRC), trace_rate=1)
    with pytest.raises(InputError) as info:
        worker_options(traced, 2, None, "127.0.0.1", None)
    assert info.value.field == "--workers" and "trace_rate" in info.value.reason
    assert worker_options(traced, 0, None, "127.0.0.1", None) is None


def test_overrides_apply_and_keep_the_rest():
    s = parse(copy.deepcopy(BASE), SRC)
    o = with_overrides(s, duration_s=2.5, warmup_s=0, baselines=False)
    assert (o.run.duration_s, o.run.warmup_s, o.run.baselines) == (2.5, 0, False)
    assert o.tenants == s.tenants
    assert with_overrides(s) == s


# -- model repository ----------------------------------------------------------------------------------
def _scenario(**tenant0) -> Scenario:
    return parse(mutated(lambda d: d["tenants"][0].update(**tenant0)), SRC)


def test_bundled_models_pass():
    check_models(parse(copy.deepcopy(BASE), SRC), MODELS, SRC)


def test_unknown_model_lists_available():
    with pytest.raises(InputError) as info:
        check_models(_scenario(model="resnet_huge"), MODELS, SRC)
    err = info.value
    assert err.field == "tenants[0].model"
    assert str(err).startswith(f"{SRC}: tenants[0].model: no model 'resnet_huge' in {MODELS}")
    listed = re.search(r"\(has: (.*)\); did you mean 'resnet'\?$", err.reason).group(1).split(", ")
    assert {"resnet_tiny", "lstm_tiny", "bert_tiny"} <= set(listed)


def test_missing_repository(tmp_path: Path):
    with pytest.raises(InputError) as info:
        check_models(_scenario(), tmp_path / "nowhere", SRC)
    assert str(info.value) == f"{SRC}: server.model_repository: no such directory: {tmp_path / 'nowhere'}"


def _repo_with(tmp_path: Path, name: str, config: str) -> Path:
    repo = tmp_path / "repo"
    (repo / name / "1").mkdir(parents=True)
    (repo / name / "config.pbtxt").write_text(config)
    shutil.copytree(MODELS / "lstm_tiny", repo / "lstm_tiny", ignore=shutil.ignore_patterns("*.onnx"))
    return repo


def test_broken_config(tmp_path: Path):
    repo = _repo_with(tmp_path, "resnet_tiny", 'name: "resnet_tiny"\nmax_batch_size: oops {\n')
    with pytest.raises(InputError) as info:
        check_models(parse(copy.deepcopy(BASE), SRC), repo, SRC)
    path = repo / "resnet_tiny" / "config.pbtxt"
    assert str(info.value).startswith(f"{path}: not a valid Triton model config: ")


def test_missing_config(tmp_path: Path):
    repo = _repo_with(tmp_path, "resnet_tiny", "")
    (repo / "resnet_tiny" / "config.pbtxt").unlink()
    with pytest.raises(InputError) as info:
        check_models(parse(copy.deepcopy(BASE), SRC), repo, SRC)
    assert str(info.value) == f"{repo / 'resnet_tiny' / 'config.pbtxt'}: missing config.pbtxt"


def test_config_name_must_match_folder(tmp_path: Path):
    repo = _repo_with(tmp_path, "resnet_tiny", 'name: "other"\nbackend: "python"\n')
    with pytest.raises(InputError) as info:
        check_models(parse(copy.deepcopy(BASE), SRC), repo, SRC)
    assert info.value.field == "name"
    assert "'other'" in info.value.reason


UNBATCHED = 'name: "flat"\nmax_batch_size: 0\nbackend: "python"\n'


def test_dynamic_batching_needs_a_batching_model(tmp_path: Path):
    repo = _repo_with(tmp_path, "flat", UNBATCHED)
    s = _scenario(model="flat", server={"dynamic_batching": True})
    with pytest.raises(InputError) as info:
        check_models(s, repo, SRC)
    assert "server.dynamic_batching" in str(info.value)
    assert "max_batch_size 0" in info.value.reason
    assert "'flat'" in info.value.reason
    # the same model without dynamic batching is fine
    check_models(_scenario(model="flat"), repo, SRC)


def test_dynamic_batching_error_names_file_and_field(tmp_path: Path):
    repo = _repo_with(tmp_path, "flat", UNBATCHED)
    with pytest.raises(InputError) as info:
        check_models(_scenario(model="flat", server={"dynamic_batching": True}), repo, SRC)
    assert str(info.value).startswith(f"{SRC}: tenants[0].server.dynamic_batching: ")


# -- pricing -------------------------------------------------------------------------------------------
def test_known_instance_has_a_price():
    price = check_price(parse(copy.deepcopy(BASE), SRC), SRC)
    assert price.name == "g4dn.xlarge"
    assert price.usd_per_hour > 0


def test_unknown_instance():
    s = parse(mutated(lambda d: d["pricing"].update(instance="zz.mega")), SRC)
    with pytest.raises(InputError) as info:
        check_price(s, SRC)
    message = str(info.value)
    assert message.startswith(f"{SRC}: pricing.instance: 'zz.mega' is not in the bundled catalog")
    assert "g4dn.xlarge" in message  # lists the known ones
    assert info.value.exit_code == 2


def test_did_you_mean_only_when_a_name_is_close():
    assert did_you_mean("resnt", ["resnet", "bert"]) == "; did you mean 'resnet'?"
    assert did_you_mean("g4dn.xlarg", ["g5.xlarge", "g4dn.xlarge"]) == "; did you mean 'g4dn.xlarge'?"
    assert did_you_mean("zzz", ["resnet", "bert"]) == ""
    assert did_you_mean("a", []) == ""


def test_relative_paths_resolve_from_the_scenario_files_folder(tmp_path, monkeypatch):
    """As the README says: a copy of smoke.toml elsewhere looks for ../model_repository beside itself."""
    smoke = (REPO_ROOT / "scenarios" / "smoke.toml").read_text(encoding="utf-8")
    elsewhere = tmp_path / "a" / "b"
    elsewhere.mkdir(parents=True)
    copied = elsewhere / "smoke.toml"
    copied.write_text(smoke, encoding="utf-8")
    # From scenarios/, "../model_repository" relative to the current directory would exist: it must not be used.
    monkeypatch.chdir(REPO_ROOT / "scenarios")
    with pytest.raises(InputError) as info:
        prepare(copied)
    assert info.value.field == "server.model_repository"
    assert info.value.reason == f"no such directory: {tmp_path / 'a' / 'model_repository'}"
    # The same file with the path written from its own folder is accepted, whatever the current directory.
    relative = os.path.relpath(REPO_ROOT / "model_repository", elsewhere)
    copied.write_text(smoke.replace('"../model_repository"', f'"{relative}"'), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert prepare(copied).repository == (REPO_ROOT / "model_repository").resolve()


def test_protocol_defaults_to_http_and_a_remote_grpc_tenant_needs_the_grpc_url():
    tenant = {"name": "a", "model": "m", "sla_ms": 10, "load": {"rate": 5}}
    assert parse({"name": "t", "tenants": [tenant]}, "s.toml").tenants[0].load.protocol == "http"
    grpc = {**tenant, "load": {"rate": 5, "protocol": "grpc"}}
    remote = {"launcher": "remote", "url": "http://10.0.0.5:8000"}
    with pytest.raises(InputError, match=r"tenants\[0\]\.load\.protocol: 'grpc' on launcher 'remote' needs"):
        parse({"name": "t", "server": remote, "tenants": [grpc]}, "s.toml")
    ok = parse({"name": "t", "server": {**remote, "grpc_url": "10.0.0.5:8001"}, "tenants": [grpc]}, "s.toml")
    assert ok.server.grpc_url == "10.0.0.5:8001"
    with pytest.raises(InputError, match=r"server\.grpc_url"):
        parse({"name": "t", "server": {**remote, "grpc_url": "http://10.0.0.5:8001"}, "tenants": [grpc]}, "s.toml")


def test_a_grpc_tenant_is_refused_on_another_framework():
    tenant = {"name": "a", "model": "m", "sla_ms": 10, "load": {"rate": 5, "protocol": "grpc"}}
    with pytest.raises(InputError, match=r"tenants\[0\]\.load\.protocol: 'grpc' is Triton's; 'mlserver'"):
        parse({"name": "t", "server": {"kind": "mlserver"}, "tenants": [tenant]}, "s.toml")
    with pytest.raises(InputError, match=r"'bentoml' is reached over HTTP"):
        parse({"name": "t", "run": {"servers": ["triton", "bentoml"]}, "tenants": [tenant]}, "s.toml")
