"""The spec: parsing, validation, one-line refusals that name field, value and what is allowed; TOML I/O."""
from __future__ import annotations

import dataclasses
import math

import pytest

from initlab.engine import spec
from initlab.engine.spec import FIELDS, Config, SpecError, parse_value


def refusal(fn, *args) -> SpecError:
    with pytest.raises(SpecError) as info:
        fn(*args)
    return info.value


# parsing ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, raw, want", [
    ("depth", "12", 12), ("depth", " 7 ", 7), ("depth", 3, 3), ("depth", 4.0, 4),
    ("std", "0.25", 0.25), ("std", 2, 2.0),
    ("bias", "true", True), ("bias", "no", False), ("bias", "OFF", False), ("bias", True, True),
    ("activation", " relu ", "relu"),
    ("gain", "", None), ("gain", "auto", None), ("gain", None, None), ("gain", "2.5", 2.5),
    ("poly_w", "2, -1", (2.0, -1.0)), ("poly_w", [1, 2.5], (1.0, 2.5)),
])
def test_parse_value_turns_raw_values_into_the_field_type(name, raw, want):
    got = spec.parse_value(name, raw)
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize("name, raw", [
    ("depth", "abc"), ("depth", "2.5"), ("depth", 2.5), ("depth", True), ("std", "wide"), ("std", False),
    ("bias", "maybe"), ("bias", 2), ("bias", 1.0), ("activation", 3), ("poly_w", "1,nan"), ("poly_w", "1,,2"), ("poly_w", []),
    ("poly_w", "1,inf"), ("depth", "\uff13"), ("depth", "1_0"), ("lr", "1_0.5"), ("poly_w", "1,2_0"),
    ("lr", "\uff11e-3"),
])
def test_parse_value_refuses_what_does_not_parse(name, raw):
    e = refusal(spec.parse_value, name, raw)
    assert e.field == name and e.value == raw
    assert str(e).startswith(f"{name}: {spec.shown(raw)} is not allowed; ")


def test_parse_value_refuses_an_unknown_setting_and_lists_the_known_ones():
    e = refusal(spec.parse_value, "depht", "3")
    assert e.field == "depht"
    assert "depth" in e.allowed and "width" in e.allowed


# checking --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, value, allowed_part", [
    ("depth", 0, "an integer in [1, 10000]"),
    ("width", -3, "an integer in [1, 1048576]"),
    ("std", math.nan, "a number in [0, 1000000]"),
    ("std", math.inf, "a number in [0, 1000000]"),
    ("dropout", 1.0, "a number in [0, 1)"),           # open upper bound: p = 1 drops everything
    ("gain", 0.0, "a number in (0, 1000000]"),        # open lower bound
    ("activation", "swish", "one of identity, sigmoid, tanh"),
    ("init", "he", "one of default, zeros, constant"),
    ("device", "tpu", "auto, cpu, cuda, cuda:N or mps"),
    ("data", "train.csv", "a path to a .npz or .pt file"),
])
def test_check_value_names_field_value_and_what_is_allowed(name, value, allowed_part):
    e = refusal(spec.check_value, name, value)
    assert e.field == name
    assert e.value == value or (value != value and e.value != e.value)     # NaN is never equal to itself
    assert allowed_part in e.allowed
    line = str(e)
    assert "\n" not in line
    assert line.startswith(f"{name}: {value!r} is not allowed; ") and allowed_part in line


@pytest.mark.parametrize("name, value", [
    ("depth", 1), ("depth", 10000), ("dropout", 0.0), ("dropout", 0.999), ("gain", None), ("gain", 1e-9),
    ("device", "cuda:3"), ("device", "auto"), ("data", "blobs"), ("std", 0.0),
])
def test_check_value_accepts_the_edges_of_what_is_allowed(name, value):
    spec.check_value(name, value)


def test_a_data_file_must_exist(tmp_path):
    missing = str(tmp_path / "nope.npz")
    assert "no such file" in refusal(spec.check_value, "data", missing).allowed
    present = tmp_path / "xy.npz"
    present.write_bytes(b"")
    spec.check_value("data", str(present))


def test_validate_checks_every_field_and_the_joint_rules():
    spec.validate(Config())
    assert refusal(spec.validate, Config(width=0)).field == "width"
    e = refusal(spec.validate, Config(poly_bias=True, poly_w=(2.0,)))
    assert e.field == "poly_w" and "at least two" in e.allowed
    spec.validate(Config(poly_bias=True, poly_w=(2.0, 1.0)))
    e = refusal(spec.validate, Config(norm="batch", batch=1))
    assert e.field == "batch" and e.value == 1 and "norm is batch" in e.allowed
    spec.validate(Config(norm="batch", batch=2))
    spec.validate(Config(norm="layer", batch=1))


def test_every_field_has_a_flag_friendly_name_help_and_group():
    assert set(FIELDS) == {f.name for f in dataclasses.fields(Config)}
    for name, info in FIELDS.items():
        assert name.isidentifier() and name.islower()
        assert info.help and info.group in {"model", "init", "probe", "data", "train", "run"}
        if info.choices:
            assert getattr(Config(), name) in info.choices


def test_config_is_frozen_and_replace_makes_a_new_one():
    cfg = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.depth = 3  # type: ignore[misc]
    other = cfg.replace(depth=3)
    assert other.depth == 3 and cfg.depth == Config().depth


# field_error (forms) ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, raw", [("depth", "12"), ("gain", ""), ("activation", "gelu"), ("bias", "false"),
                                       ("poly_w", "1, 2, 3"), ("device", "cpu")])
def test_field_error_is_none_for_an_accepted_value(name, raw):
    assert spec.field_error(name, raw) is None


@pytest.mark.parametrize("name, raw, allowed_part", [
    ("depth", "0", "an integer in [1, 10000]"),
    ("depth", "ten", "an integer in [1, 10000]"),
    ("width", "-4", "an integer in [1, 1048576]"),
    ("std", "nan", "a number in [0, 1000000]"),
    ("activation", "swish", "one of identity, sigmoid, tanh, relu"),
    ("bias", "maybe", "true or false"),
    ("poly_w", "1,x", "comma-separated finite numbers"),
    ("lr", "0", "a number in (0, 1e+09]"),
])
def test_field_error_is_one_line_naming_field_value_and_allowed(name, raw, allowed_part):
    msg = spec.field_error(name, raw)
    assert msg is not None and "\n" not in msg
    assert msg.startswith(f"{name}: ")
    assert raw.strip() in msg
    assert "is not allowed" in msg and allowed_part in msg


# from_mapping and TOML -------------------------------------------------------------------------------------------

def test_from_mapping_parses_over_a_base_and_refuses_unknown_keys():
    base = Config(depth=7)
    cfg = spec.from_mapping({"width": "32", "activation": "relu"}, base)
    assert (cfg.depth, cfg.width, cfg.activation) == (7, 32, "relu")
    assert refusal(spec.from_mapping, {"widht": "32"}).field == "widht"
    assert refusal(spec.from_mapping, {"depth": "0"}).field == "depth"


def unusual_config(tmp_path) -> Config:
    data = tmp_path / 'od"d\\name.npz'      # quote and backslash must survive TOML's string escapes
    data.write_bytes(b"")
    return Config(depth=7, width=33, in_features=5, out_features=2, activation="leaky_relu", slope=0.2,
                  last_activation=True, bias=False, norm="layer", residual=True, dropout=0.125, init="scaled_normal",
                  gain=2.5, std=1e-7, bound=0.3, value=-1.5, sigma_w=1.3, sigma_b=0.05, mode="fan_out",
                  sparsity=0.25, lsuv_tol=0.01, batch=3, loss="mse", target=-0.75, data=str(data), n_rows=123,
                  deg=3, poly_w=(2.0, -1.0, 0.5), poly_bias=True, classes=4, standardize=True, optimizer="adamw",
                  lr=1e-4, momentum=0.9, nesterov=True, weight_decay=0.01, clip=1.0, schedule="cosine", epochs=9,
                  stats_every=2, seed=2**40 + 1, device="cpu")


def test_toml_round_trip_gives_an_equal_config(tmp_path):
    cfg = unusual_config(tmp_path)
    spec.validate(cfg)
    assert cfg != Config()
    path = tmp_path / "exp.toml"
    path.write_text(spec.to_toml(cfg))
    loaded, raw = spec.load_toml(str(path))
    assert loaded == cfg
    assert set(raw) == set(FIELDS)


def test_toml_round_trip_of_the_defaults_keeps_gain_following_the_activation(tmp_path):
    path = tmp_path / "default.toml"
    path.write_text(spec.to_toml(Config()))
    loaded, raw = spec.load_toml(str(path))
    assert loaded == Config() and loaded.gain is None and "gain" not in raw


def test_toml_tables_are_flattened_and_the_base_fills_the_rest(tmp_path):
    path = tmp_path / "tables.toml"
    path.write_text('preset = "linear-explode"\nseed = 3\n[model]\ndepth = 5\nactivation = "relu"\n'
                    '[train]\nlr = 0.5\n')
    cfg, raw = spec.load_toml(str(path), Config(width=17))
    assert (cfg.depth, cfg.activation, cfg.lr, cfg.seed, cfg.width) == (5, "relu", 0.5, 3, 17)
    assert set(raw) == {"depth", "activation", "lr", "seed"}


def test_toml_unknown_key_is_named(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text("depth = 4\n[model]\nwidht = 8\n")
    e = refusal(spec.load_toml, str(path))
    assert e.field == "config" and e.value == "model.widht"
    assert "widht" in str(e) and "width" in e.allowed


def test_toml_bad_value_names_its_field(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('depth = 2.5\n')
    assert refusal(spec.load_toml, str(path)).field == "depth"
    path.write_text('activation = "swish"\n')
    e = refusal(spec.load_toml, str(path))
    assert e.field == "activation" and "swish" in str(e)


def test_toml_missing_file(tmp_path):
    path = str(tmp_path / "absent.toml")
    e = refusal(spec.load_toml, path)
    assert e.field == "config" and e.value == path and "no such file" in e.allowed


def test_toml_directory(tmp_path):
    e = refusal(spec.load_toml, str(tmp_path))
    assert e.field == "config" and "not a directory" in e.allowed


def test_toml_invalid_syntax_is_one_line(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("depth = = 3\n[model\n")
    e = refusal(spec.load_toml, str(path))
    assert e.field == "config" and "valid TOML" in e.allowed and "\n" not in str(e)


def test_toml_that_is_not_text(tmp_path):
    path = tmp_path / "binary.toml"
    path.write_bytes(b"depth = 3\n\xff\xfe\x00garbage")
    e = refusal(spec.load_toml, str(path))
    assert e.field == "config" and "\n" not in str(e)


def test_a_switch_takes_the_words_and_numbers_its_refusal_names():
    for raw, value in (("yes", True), ("off", False), ("1", True), (1, True), (0, False), (True, True)):
        assert parse_value("bias", raw) is value, raw


@pytest.mark.parametrize("raw, shown", [("1e400", "'1e400'"), ("-1", "'-1'"), ("-1.0", "'-1.0'"), ("0", "'0'"),
                                        ("nan", "'nan'")])
def test_a_refusal_echoes_the_value_as_typed(raw, shown):
    assert spec.field_error("lr", raw).startswith(f"lr: {shown} is not allowed; ")


def test_a_config_files_refused_value_is_shown_in_tomls_words():
    import datetime

    assert spec.shown(True) == "true" and spec.shown([1, True]) == "[1, true]"
    assert spec.shown(datetime.date(1979, 5, 27)) == "1979-05-27" and spec.shown({"a": 1}) == "{a = 1}"
    assert spec.shown({"\n": 0, "b c": [1]}) == r'{"\u000A" = 0, "b c" = [1]}'      # one line, keys as TOML quotes them
    assert str(SpecError("seed", datetime.date(1979, 5, 27), "an integer")) == \
        "seed: 1979-05-27 is not allowed; an integer"


def test_numpys_subclasses_of_python_values_are_kept_as_pythons_own():
    import numpy as np

    cfg = Config(lr=np.float64(0.01), data=np.str_("poly"), poly_w=(np.float64(2.0), -1.0), bias=False, depth=3)
    assert type(cfg.lr) is float and type(cfg.data) is str and all(type(v) is float for v in cfg.poly_w)
    assert cfg.bias is False and type(cfg.depth) is int
    assert cfg == Config(lr=0.01, poly_w=(2.0, -1.0), bias=False, depth=3)
    assert all(type(v) in (bool, int, float, str, list, type(None)) for v in cfg.to_dict().values())
    from enum import Enum, IntEnum

    class Act(str, Enum):
        TANH = "tanh"

    class Depth(IntEnum):
        FIVE = 5

    cfg = Config(activation=Act.TANH, depth=Depth.FIVE)       # their values, not their names
    assert cfg.activation == "tanh" and type(cfg.activation) is str and type(cfg.depth) is int and cfg.depth == 5
    spec.validate(cfg)
