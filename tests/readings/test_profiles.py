"""Profiles and the OBIS table are data: every file loads, is well-formed and cites its source."""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner

from amsread.app.cli import cli
from amsread.errors import UsageError
from amsread.readings.obis import describe, parse_obis
from amsread.readings.profiles import (
    ProfileSet,
    builtin_profiles,
    criterion_met,
    load_profile,
    parse_profile,
)
from amsread.readings.units import UNITS

SLOVENIA_CORPUS = Path(__file__).parent.parent / "corpus" / "slovenia"
SNAKE = re.compile(r"[a-z][a-z0-9_]*\Z")
BUILTIN_FILES = sorted(
    e.name
    for e in resources.files("amsread.readings").joinpath("data/profiles").iterdir()
    if e.name.endswith(".toml")
)


def _raw(name: str) -> dict[str, object]:
    text = resources.files("amsread.readings").joinpath("data/profiles", name).read_text("utf-8")
    return tomllib.loads(text)


def test_every_builtin_profile_file_loads() -> None:
    assert len(builtin_profiles()) == len(BUILTIN_FILES) >= 5
    names = [p.name for p in builtin_profiles()]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("name", BUILTIN_FILES)
def test_every_builtin_profile_cites_a_public_list_definition(name: str) -> None:
    data = _raw(name)
    sources = data.get("sources")
    assert isinstance(sources, list) and sources, f"{name} cites no source"
    for source in sources:
        assert isinstance(source, str)
        # "Publisher: 'document title' (what it gives)": a name and a quoted title.
        assert re.match(r"[^:]{3,}: '[^']{8,}'", source), f"{name}: vague source {source!r}"
    assert isinstance(data.get("title"), str) and data["title"]


@pytest.mark.parametrize("profile", builtin_profiles(), ids=lambda p: p.name)
def test_every_obis_code_in_a_builtin_profile_is_well_formed(profile: object) -> None:
    from amsread.readings.profiles import Profile

    assert isinstance(profile, Profile)
    rules = list(profile.implied) + [r for layout in profile.layouts for r in layout.positions]
    for rule in rules:
        if rule.pattern is None:
            continue
        assert len(rule.pattern) == 6
        assert all(g is None or 0 <= g <= 255 for g in rule.pattern)
        if rule.obis is not None:
            # Every exact code a built-in profile gives has a stable name.
            assert describe(rule.obis)[0] is not None, rule.obis.hex()
    if profile.leading_obis is not None:
        assert describe(profile.leading_obis)[0] == "list_version"


def test_every_position_with_a_unit_is_typed_as_a_number() -> None:
    for profile in builtin_profiles():
        for layout in profile.layouts:
            for rule in layout.positions:
                if rule.unit is not None:
                    assert rule.kind == "number", (profile.name, layout.name)


def test_obis_table_keys_names_and_units_are_well_formed() -> None:
    text = resources.files("amsread.readings").joinpath("data/obis.toml").read_text("utf-8")
    codes = tomllib.loads(text)["codes"]
    symbols = set(UNITS.values())
    for key, entry in codes.items():
        groups = key.split(".")
        assert len(groups) == 4 and all(0 <= int(g) <= 255 for g in groups), key
        assert set(entry) <= {"name", "unit"}, key
        assert SNAKE.match(entry["name"]), key
        assert entry.get("unit") is None or entry["unit"] in symbols, key


@pytest.mark.parametrize(
    ("code", "name", "unit"),
    [
        ("1.0.1.7.0.255", "active_power_import", "W"),
        ("1.1.1.7.0.255", "active_power_import", "W"),  # B does not matter
        ("1.0.1.8.0.101", "active_energy_import", "Wh"),  # nor does F
        ("1.0.1.8.1.255", "active_energy_import_t1", "Wh"),
        ("1.0.2.8.2.255", "active_energy_export_t2", "Wh"),
        ("1.0.32.7.0.255", "voltage_l1", "V"),
        ("1.0.71.7.0.255", "current_l3", "A"),
        ("0.0.96.1.0.255", "meter_id", None),
        ("1.1.0.0.5.255", "meter_id", None),
        ("0.0.96.1.7.255", "meter_type", None),
        ("1.1.0.2.129.255", "list_version", None),
        ("0.0.1.0.0.255", "clock", None),
        ("0.8.25.9.0.255", "push_setup", None),
        ("0.0.42.0.0.255", "logical_device_name", None),
    ],
)
def test_common_codes_have_stable_names(code: str, name: str, unit: str | None) -> None:
    assert describe(parse_obis(code)) == (name, unit)


# -- validation -----------------------------------------------------------------


def _write(tmp_path: Path, text: str, name: str = "mine.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


VALID = """
name = "my-meter"
[match]
list_id = "MY_V1"
[[implied]]
obis = "1.*.31.7.0.255"
scaler = -2
unit = "A"
"""


def test_a_valid_user_profile_loads(tmp_path: Path) -> None:
    profile = load_profile(_write(tmp_path, VALID))
    assert profile.name == "my-meter"
    assert profile.list_ids == ("MY_V1",)
    assert profile.implied_for(parse_obis("1.1.31.7.0.255")) is not None
    assert profile.implied_for(parse_obis("1.1.32.7.0.255")) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 'red'\n" + VALID, r"mine\.toml: unknown key 'colour'"),
        (VALID.replace("list_id", "list_name"), r"mine\.toml: unknown key match\.list_name"),
        (VALID + "scalar = 1\n", r"mine\.toml: implied\[0\]: unknown key 'scalar'"),
        (VALID.replace('unit = "A"', 'unit = "amps"'), r"implied\[0\]: unknown unit 'amps'"),
        (VALID.replace("scaler = -2", "scaler = 30"), r"implied\[0\]: 'scaler' must be"),
        (VALID.replace("scaler = -2", "scale = 0"), r"implied\[0\]: 'scale' must not be 0"),
        (VALID.replace('"1.*.31.7.0.255"', '"1.31.7.0.255"'), r"does not have six groups"),
        (VALID.replace('"1.*.31.7.0.255"', '"1.0.31.7.0.256"'), r"group outside 0-255"),
        (VALID.replace('name = "my-meter"', ""), r"mine\.toml: 'name' is required"),
        ('name = "x"\n[[implied]]\nobis = "1.0.1.8.0.255"\n', r"needs at least one of"),
        ('name = "x"\n[match]\nmanufacturer = "KAMS"\n', r"not a 3-letter flag"),
        ('name = "x"\n[match]\nitems = 0\n', r"match\.items must be a positive integer"),
        (
            'name = "x"\n[[position]]\nobis = "1.*.1.8.0.255"\n',
            r"position\[0\]: needs an exact OBIS code",
        ),
        (
            'name = "x"\n[[position]]\nobis = "1.0.1.8.0.255"\n'
            '[[implied]]\nobis = "1.0.1.8.0.255"\n',
            r"either positional .* or labelled",
        ),
        (
            'name = "x"\n[[layout]]\nitems = 3\nposition = [{ obis = "1.0.1.8.0.255" }]\n',
            r"layout\[0\]: items = 3 but 1 positions are given",
        ),
        (
            'name = "x"\n[[layout]]\nposition = [{ obis = "1.0.1.8.0.255", type = "str" }]\n',
            r"layout\[0\]\.position\[0\]: 'type' must be one of",
        ),
        ('name = "x"\n[[layout]]\nname = "empty"\n', r"a layout needs \[\[\.\.\.position\]\]"),
        ("name = [", r"is not valid TOML"),
    ],
)
def test_invalid_profiles_are_rejected_naming_the_file_and_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        load_profile(_write(tmp_path, text))


def test_missing_profile_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="profile file not found"):
        load_profile(tmp_path / "nope.toml")


def test_obis_codes_may_be_written_in_the_usual_notations() -> None:
    for text in ("1-0:31.7.0.255", "1-0:31.7.0*255", "1.0.31.7.0.255"):
        profile = parse_profile({"name": "x", "position": [{"obis": text, "unit": "A"}]}, "inline")
        assert profile.positions[0].obis == parse_obis("1.0.31.7.0.255")


# -- selection -------------------------------------------------------------------


def test_more_specific_profile_wins() -> None:
    profiles = ProfileSet()
    assert profiles.select("Kamstrup_V0001", 65, "KAM").name == "kamstrup-dk"  # type: ignore[union-attr]
    assert profiles.select("Kamstrup_V0001", 25, "KAM").name == "kamstrup-no"  # type: ignore[union-attr]
    assert profiles.select("AIDON_V0001", 12, None) is None


def test_user_profile_wins_a_tie_and_replaces_a_builtin_of_the_same_name(
    tmp_path: Path,
) -> None:
    mine = load_profile(_write(tmp_path, VALID.replace("MY_V1", "Kamstrup_V0001")))
    assert ProfileSet([mine]).select("Kamstrup_V0001", 25, None).name == "my-meter"  # type: ignore[union-attr]
    same_name = load_profile(
        _write(tmp_path, VALID.replace('"my-meter"', '"kamstrup-dk"').replace("MY_V1", "X"))
    )
    profiles = ProfileSet([same_name])
    assert [p.name for p in profiles.profiles].count("kamstrup-dk") == 1
    assert profiles.select("Kamstrup_V0001", 65, None).name == "kamstrup-no"  # type: ignore[union-attr]


def test_profile_set_from_paths_loads_user_files(tmp_path: Path) -> None:
    profiles = ProfileSet.from_paths([_write(tmp_path, VALID)])
    assert profiles.profiles[-1].name == "my-meter"
    assert len(profiles.profiles) == len(builtin_profiles()) + 1


def test_positional_layout_is_chosen_by_count_list_id_and_types() -> None:
    profiles = ProfileSet()
    numbers = [1] * 9
    found = profiles.select_positional(
        "KFM_001", ["KFM_001", b"1234", b"MA105", *numbers[:6]], None
    )
    assert found is not None and found[1].name == "list 2, single-phase"
    assert profiles.select_positional(None, [b"\x07\xe7" + bytes(10), *numbers[:8]], None)
    # Text where numbers belong: no layout fits.
    assert profiles.select_positional(None, [b"\x07\xe7" + bytes(10), *["x"] * 8], None) is None


def test_profile_examples_in_the_readme_are_valid() -> None:
    readme = (Path(__file__).parent.parent.parent / "README.md").read_text("utf-8")
    section = readme.split("## Supported list shapes and profiles", 1)[1].split("\n## ", 1)[0]
    examples = re.findall(r"```toml\n(.*?)```", section, re.S)
    assert len(examples) == 2
    for example in examples:
        profile = parse_profile(tomllib.loads(example), "README example")
        assert profile.name


def test_a_list_id_ending_in_a_star_matches_every_id_that_starts_so(tmp_path: Path) -> None:
    profile = load_profile(_write(tmp_path, VALID.replace('"MY_V1"', '["MY_*"]')))
    profiles = ProfileSet([profile], builtin=())
    assert profiles.select("MY_V1", 9, None) is profile
    assert profiles.select("MY_", 9, None) is profile
    assert profiles.select("XMY_V1", 9, None) is None  # a prefix, not a substring
    assert profiles.select(None, 9, None) is None
    exact = load_profile(_write(tmp_path, VALID))
    assert ProfileSet([exact], builtin=()).select("MY_V12", 9, None) is None


SLOVENIAN_9 = [b"ISK1020784605887", b"ISK84605887", 592, 0, 0, 112, 2313, 0, 0]


def test_slovenian_layouts_need_the_iskraemeco_device_name() -> None:
    profiles = ProfileSet()
    found = profiles.select_positional("ISK1020784605887", SLOVENIAN_9, None)
    assert found is not None and found[0].name == "iskraemeco-si"
    assert found[1].name == "single-phase instantaneous list, 9 values"
    # The same shape led by another name (or by a date-time): not these positions.
    other = [b"ABC1020784605887", *SLOVENIAN_9[1:]]
    assert profiles.select_positional("ABC1020784605887", other, None) is None
    clock = [b"\x07\xe8\x0b\x16\x05\x14\x2c\x3b\x00\xff\xc4\x00", *SLOVENIAN_9[1:]]
    assert profiles.select_positional(None, clock, None) is None


def test_slovenian_lists_of_equal_length_are_told_apart_by_their_types() -> None:
    profiles = ProfileSet()
    name = "ISK1030789014731"
    registers = [name.encode(), b"16820006", 1, b"\x00\x01", *[1] * 8]
    instantaneous = [name.encode(), b"UP_3f", *[2314] * 10]
    found = profiles.select_positional(name, registers, None)
    assert found is not None and found[1].name == "list 2, 12 values"
    found = profiles.select_positional(name, instantaneous, None)
    assert found is not None and found[1].name == "Elektro Celje instantaneous list, 12 values"
    single_phase = [name.encode(), b"ISK84605887", *[1] * 7]
    register_list = [name.encode(), *[1] * 8]
    found = profiles.select_positional(name, single_phase, None)
    assert found is not None and found[1].name == "single-phase instantaneous list, 9 values"
    found = profiles.select_positional(name, register_list, None)
    assert found is not None and found[1].name == "register list, 9 values"


def test_criterion_met_is_equality_or_a_prefix_for_a_trailing_star() -> None:
    assert criterion_met(("ISK*",), "ISK1030783826316")
    assert criterion_met((25, 35), 35)
    assert not criterion_met(("ISK*",), "ISX1")
    assert not criterion_met(("ISK*",), None)
    assert not criterion_met(("ISK",), "ISK1")  # no star: exact
    assert not criterion_met((25,), "25")


def test_explain_shows_the_slovenian_list_id_criterion_met() -> None:
    hex_text = (SLOVENIA_CORPUS / "list1_18_values.hex").read_text("utf-8")
    result = CliRunner().invoke(cli, ["explain", "--file", "-"], input=hex_text)
    assert 'iskraemeco-si: list_id "ISK1030783826316" ✓; values 18 ✓ (chosen)' in result.output
