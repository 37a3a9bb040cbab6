"""Every list shape in the field, built by hand field by field, and what it decodes to.

Each APDU is written one field per line with a comment (the style of the
amshan test suite). Values are realistic; where a capture was published, its
bytes are used and the source named.
"""

from __future__ import annotations

from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amsread.dlms.apdu import parse_data_notification
from amsread.errors import ApduError
from amsread.model import Message
from amsread.pipeline import Pipeline
from amsread.readings.builder import ReadingsBuilder
from amsread.readings.profiles import ProfileSet, parse_profile
from amsread.readings.shapes import extract

Triple = tuple[str | None, object, str | None]


def decode(
    apdu: bytes, system_title: bytes | None = None, builder: ReadingsBuilder | None = None
) -> Message:
    builder = builder or ReadingsBuilder()
    return builder.build(parse_data_notification(apdu), system_title)


def triples(message: Message) -> list[Triple]:
    return [(r.obis, r.value, r.unit) for r in message.readings]


def by_name(message: Message) -> dict[str | None, object]:
    return {r.name: r.value for r in message.readings}


# -- flat OBIS/value pairs (Kamstrup) -------------------------------------------

# fmt: off
KAMSTRUP_NO_LIST_1 = bytes.fromhex(
    "0f"  # data-notification
    "00000000"  # long-invoke-id-and-priority
    "0c" "07e50b0f010d2d0aff800080"  # date-time 2021-11-15 13:45:10, deviation unknown, DST
    "0219"  # structure of 25 elements
    "0a0e" "4b616d73747275705f5630303031"  # list version "Kamstrup_V0001", no OBIS code
    "0906" "0101000005ff"  # 1.1.0.0.5.255 meter ID
    "0a10" "35373036353637303132333435363738"  # "5706567012345678"
    "0906" "0101600101ff"  # 1.1.96.1.1.255 meter type
    "0a12" "363834313132314e42323433313031303430"  # "6841121NB243101040" (18 chars)
    "0906" "0101010700ff" "0600000a8c"  # P+ 2700 W
    "0906" "0101020700ff" "0600000000"  # P- 0 W
    "0906" "0101030700ff" "0600000000"  # Q+ 0 var
    "0906" "0101040700ff" "06000001c2"  # Q- 450 var
    "0906" "01011f0700ff" "0600000474"  # I1 1140 -> 11.40 A
    "0906" "0101330700ff" "060000025d"  # I2 605 -> 6.05 A
    "0906" "0101470700ff" "0600000367"  # I3 871 -> 8.71 A
    "0906" "0101200700ff" "1200e9"  # U1 233 V
    "0906" "0101340700ff" "1200e7"  # U2 231 V
    "0906" "0101480700ff" "1200ea"  # U3 234 V
)
# fmt: on


def test_kamstrup_pairs_get_list_version_code_and_current_scaler_from_profile() -> None:
    message = decode(KAMSTRUP_NO_LIST_1, b"KAM\x01\x02\x03\x04\x05")
    assert message.profile == "kamstrup-no"
    assert message.list_id == "Kamstrup_V0001"
    assert message.meter_time == "2021-11-15T13:45:10"
    assert message.shape == "obis-value pairs"
    assert triples(message) == [
        ("1.1.0.2.129.255", "Kamstrup_V0001", None),
        ("1.1.0.0.5.255", "5706567012345678", None),
        ("1.1.96.1.1.255", "6841121NB243101040", None),
        ("1.1.1.7.0.255", 2700, "W"),
        ("1.1.2.7.0.255", 0, "W"),
        ("1.1.3.7.0.255", 0, "var"),
        ("1.1.4.7.0.255", 450, "var"),
        ("1.1.31.7.0.255", 11.4, "A"),
        ("1.1.51.7.0.255", 6.05, "A"),
        ("1.1.71.7.0.255", 8.71, "A"),
        ("1.1.32.7.0.255", 233, "V"),
        ("1.1.52.7.0.255", 231, "V"),
        ("1.1.72.7.0.255", 234, "V"),
    ]
    assert message.meter_id == "5706567012345678"


# fmt: off
KAMSTRUP_NO_LIST_2_SINGLE_PHASE = bytes.fromhex(
    "0f"  # data-notification
    "00000000"  # long-invoke-id-and-priority
    "0c" "07e50b0f010e000aff800080"  # date-time 2021-11-15 14:00:10
    "021b"  # structure of 27 elements
    "0a0e" "4b616d73747275705f5630303031"  # "Kamstrup_V0001"
    "0906" "0101000005ff" "0a10" "35373036353637303132333435363738"  # meter ID
    "0906" "0101600101ff" "0a12" "363834313133314250323433313031303430"  # meter type
    "0906" "0101010700ff" "06000003e8"  # P+ 1000 W
    "0906" "0101020700ff" "0600000000"  # P- 0 W
    "0906" "0101030700ff" "0600000000"  # Q+ 0 var
    "0906" "0101040700ff" "060000007b"  # Q- 123 var
    "0906" "01011f0700ff" "06000001b8"  # I1 440 -> 4.40 A
    "0906" "0101200700ff" "1200e6"  # U1 230 V
    "0906" "0001010000ff" "090c" "07e50b0f010e000aff800080"  # clock, octet-string date-time
    "0906" "0101010800ff" "060007a120"  # A+ 500000 x 10 Wh
    "0906" "0101020800ff" "0600000064"  # A- 100 x 10 Wh
    "0906" "0101030800ff" "0600000bb8"  # R+ 3000 x 10 varh
    "0906" "0101040800ff" "0600001388"  # R- 5000 x 10 varh
)
# fmt: on


def test_kamstrup_norwegian_energies_are_in_tens_of_watt_hours() -> None:
    message = decode(KAMSTRUP_NO_LIST_2_SINGLE_PHASE)
    values = by_name(message)
    assert values["active_energy_import"] == 5_000_000
    assert values["active_energy_export"] == 1000
    assert values["reactive_energy_import"] == 30_000
    assert values["reactive_energy_export"] == 50_000
    assert values["clock"] == "2021-11-15T14:00:10"
    assert values["current_l1"] == 4.4
    assert {r.unit for r in message.readings if r.name and "energy" in r.name} == {"Wh", "varh"}


# fmt: off
KAMSTRUP_LIST_1_SINGLE_PHASE_METER = bytes.fromhex(
    "0f"  # data-notification
    "00000000"  # long-invoke-id-and-priority
    "00"  # no date-time
    "0219"  # structure of 25: the three-phase shape
    "0a0e" "4b616d73747275705f5630303031"  # "Kamstrup_V0001"
    "0906" "0101000005ff" "0a10" "35373036353637303132333435363738"  # meter ID
    "0906" "0101600101ff" "0a12" "363834313133314250323433313031303430"  # meter type
    "0906" "0101010700ff" "06000003e8"  # P+ 1000 W
    "0906" "0101020700ff" "0600000000"  # P- 0 W
    "0906" "0101030700ff" "0600000000"  # Q+ 0 var
    "0906" "0101040700ff" "060000007b"  # Q- 123 var
    "0906" "01011f0700ff" "06000001b8"  # I1 4.40 A
    "0906" "0101330700ff" "00"  # I2: null-data, no phase L2
    "0906" "0101470700ff" "00"  # I3: null-data, no phase L3
    "0906" "0101200700ff" "1200e6"  # U1 230 V
    "0906" "0101340700ff" "00"  # U2: null-data
    "0906" "0101480700ff" "00"  # U3: null-data
)
# fmt: on


def test_null_data_placeholders_of_absent_phases_give_no_readings() -> None:
    message = decode(KAMSTRUP_LIST_1_SINGLE_PHASE_METER)
    names = [r.name for r in message.readings]
    assert "current_l1" in names and "voltage_l1" in names
    assert not {"current_l2", "current_l3", "voltage_l2", "voltage_l3"} & set(names)
    assert len(message.readings) == 9
    assert message.meter_time is None


# -- OBIS/value/{scaler, unit} triplets (Austria) -------------------------------

# fmt: off
AUSTRIA_TRIPLETS_WITHOUT_HEADER_TIME = bytes.fromhex(
    "0f"  # data-notification
    "80000001"  # long-invoke-id-and-priority (priority bit set)
    "00"  # no date-time in the header
    "0208"  # structure of 8
    "090c" "07e70601040c0005ffff8880"  # date-time 2023-06-01 12:00:05, deviation -120: +02:00
    "0906" "0100010800ff"  # 1.0.1.8.0.255 A+
    "0600bc614e"  # 12345678
    "0202" "0f00" "161e"  # scaler 0, unit Wh
    "0906" "0100200700ff"  # 1.0.32.7.0.255 U1
    "120904"  # 2308
    "0202" "0fff" "1623"  # scaler -1, unit V
    "090c" "313233343536373839303132"  # meter number "123456789012", no OBIS code
)
# fmt: on


def test_austrian_triplets_use_the_leading_date_time_when_the_header_has_none() -> None:
    message = decode(AUSTRIA_TRIPLETS_WITHOUT_HEADER_TIME)
    assert message.shape == "obis-value-scaler triplets"
    assert message.meter_time == "2023-06-01T12:00:05+02:00"
    assert triples(message) == [
        ("1.0.1.8.0.255", 12345678, "Wh"),
        ("1.0.32.7.0.255", 230.8, "V"),
        ("0.0.96.1.0.255", "123456789012", None),  # trailing text: the meter number
    ]
    assert message.profile is None


# -- nested {OBIS, value, {scaler, unit}} structures ---------------------------

# fmt: off
AIDON_LIST_2 = bytes.fromhex(
    "0f"  # data-notification
    "40000000"  # long-invoke-id-and-priority
    "00"  # no date-time
    "010c"  # array of 12 structures
    "0202" "0906" "0101000281ff" "0a0b" "4149444f4e5f5630303031"  # list version "AIDON_V0001"
    "0202" "0906" "0000600100ff" "0a10" "37333539393932393031323334353637"  # meter ID
    "0202" "0906" "0000600107ff" "0a04" "36353235"  # meter type "6525"
    "0203" "0906" "0100010700ff" "060000071c" "0202" "0f00" "161b"  # P+ 1820 W
    "0203" "0906" "0100020700ff" "0600000000" "0202" "0f00" "161b"  # P- 0 W
    "0203" "0906" "0100030700ff" "0600000000" "0202" "0f00" "161d"  # Q+ 0 var
    "0203" "0906" "0100040700ff" "06000000a0" "0202" "0f00" "161d"  # Q- 160 var
    "0203" "0906" "01001f0700ff" "100042" "0202" "0fff" "1621"  # I1 66 -> 6.6 A (long)
    "0203" "0906" "0100470700ff" "100017" "0202" "0fff" "1621"  # I3 23 -> 2.3 A
    "0203" "0906" "0100200700ff" "120916" "0202" "0fff" "1623"  # U1 2326 -> 232.6 V
    "0203" "0906" "0100340700ff" "12090e" "0202" "0fff" "1623"  # U2 2318 -> 231.8 V
    "0203" "0906" "0100480700ff" "120920" "0202" "0fff" "1623"  # U3 2336 -> 233.6 V
)
# fmt: on


def test_aidon_array_of_structures_applies_the_sent_scalers_and_list_id() -> None:
    message = decode(AIDON_LIST_2)
    assert message.shape == "nested obis structures"
    assert message.list_id == "AIDON_V0001"
    assert message.profile is None  # self-describing: no profile needed
    assert triples(message)[3:] == [
        ("1.0.1.7.0.255", 1820, "W"),
        ("1.0.2.7.0.255", 0, "W"),
        ("1.0.3.7.0.255", 0, "var"),
        ("1.0.4.7.0.255", 160, "var"),
        ("1.0.31.7.0.255", 6.6, "A"),
        ("1.0.71.7.0.255", 2.3, "A"),
        ("1.0.32.7.0.255", 232.6, "V"),
        ("1.0.52.7.0.255", 231.8, "V"),
        ("1.0.72.7.0.255", 233.6, "V"),
    ]
    assert by_name(message)["meter_type"] == "6525"


# fmt: off
NESTED_IN_A_STRUCTURE = bytes.fromhex(
    "0f"  # data-notification
    "00000007"  # long-invoke-id-and-priority
    "00"  # no date-time in the header
    "0205"  # structure of 5 structures (Kaifa MA309M, Landis+Gyr E350 style)
    "0202" "0906" "0000010000ff" "090c" "07e8020e03081e00ffffc400"  # clock, 08:30:00 +01:00
    "0202" "0906" "0000600100ff" "090a" "4b464d31323334353637"  # meter ID "KFM1234567"
    "0203" "0906" "0100010800ff" "0600012d68" "0202" "0f01" "161e"  # A+ 77160, scaler 1 -> Wh
    "0203" "0906" "01001f0700ff" "1201f4" "0202" "0ffe" "1621"  # I1 500 -> 5.00 A
    "0203" "0906" "01000d0700ff" "1003b6" "0202" "0ffd" "16ff"  # power factor 950 -> 0.95
)
# fmt: on


def test_structure_of_nested_items_takes_meter_time_from_the_clock_item() -> None:
    message = decode(NESTED_IN_A_STRUCTURE)
    assert message.meter_time == "2024-02-14T08:30:00+01:00"
    assert triples(message) == [
        ("0.0.1.0.0.255", "2024-02-14T08:30:00+01:00", None),
        ("0.0.96.1.0.255", "KFM1234567", None),
        ("1.0.1.8.0.255", 771600, "Wh"),
        ("1.0.31.7.0.255", 5.0, "A"),
        ("1.0.13.7.0.255", 0.95, None),
    ]


# -- capture-object list first, then the values (Switzerland) -------------------

# fmt: off
SWISS_CAPTURE_LIST = bytes.fromhex(
    "0f"  # data-notification
    "00864c0f"  # long-invoke-id-and-priority
    "0c" "07e60913010c3314ff800000"  # date-time 2022-09-19 12:51:20
    "0208"  # structure of 8: the capture list, then 7 values
    "0108"  # array of 8 capture objects {class id, OBIS, attribute, data index}
    "0204" "120028" "0906" "0008190900ff" "0f02" "120000"  # push setup 0.8.25.9.0.255 attr 2
    "0204" "120028" "0906" "0008190900ff" "0f01" "120000"  # push setup, attr 1 (its name)
    "0204" "120001" "0906" "0000600100ff" "0f02" "120000"  # data 0.0.96.1.0.255 (meter ID)
    "0204" "120003" "0906" "0100010700ff" "0f02" "120000"  # register P+
    "0204" "120003" "0906" "0100020700ff" "0f02" "120000"  # register P-
    "0204" "120003" "0906" "0101010800ff" "0f02" "120000"  # register A+ (B = 1)
    "0204" "120003" "0906" "01001f0700ff" "0f02" "120000"  # register I1, value
    "0204" "120003" "0906" "01001f0700ff" "0f03" "120000"  # register I1, scaler_unit
    "0906" "0008190900ff"  # value 1: the push setup's name
    "0908" "3331343135393236"  # value 2: meter ID "31415926"
    "06000004d2"  # value 3: P+ 1234 W
    "0600000000"  # value 4: P- 0 W
    "0600a7d8c0"  # value 5: A+ 11000000 Wh
    "1201c2"  # value 6: I1 450
    "0202" "0ffe" "1621"  # value 7: I1 scaler -2, unit A
)
# fmt: on


def test_capture_object_list_names_the_values_that_follow_it() -> None:
    message = decode(SWISS_CAPTURE_LIST, b"LGZ\x01\x02\x03\x04\x05")
    assert message.shape == "capture-object list"
    assert triples(message) == [
        ("0.8.25.9.0.255", "0.8.25.9.0.255", None),
        ("0.0.96.1.0.255", "31415926", None),
        ("1.0.1.7.0.255", 1234, "W"),
        ("1.0.2.7.0.255", 0, "W"),
        ("1.1.1.8.0.255", 11_000_000, "Wh"),
        ("1.0.31.7.0.255", 4.5, "A"),  # scaler from the scaler_unit attribute
    ]
    assert by_name(message)["push_setup"] == "0.8.25.9.0.255"


# -- positional lists without OBIS codes ----------------------------------------

# fmt: off
KAIFA_LIST_1 = bytes.fromhex(
    "0f"  # data-notification
    "40000000"  # long-invoke-id-and-priority
    "090c" "07e3020401173416ff800000"  # date-time as a full octet-string (Kaifa)
    "0201"  # structure of 1
    "06000016dc"  # active power import 5852 W
)
# fmt: on


def test_kaifa_list_1_is_the_active_power_alone() -> None:
    message = decode(KAIFA_LIST_1)
    assert message.profile == "kaifa-no"
    assert message.meter_time == "2019-02-04T23:52:22"
    assert triples(message) == [("1.0.1.7.0.255", 5852, "W")]


# fmt: off
KAIFA_LIST_2_THREE_PHASE = bytes.fromhex(
    "0f"  # data-notification
    "40000000"  # long-invoke-id-and-priority
    "090c" "07e40119060d091eff800000"  # date-time 2020-01-25 13:09:30
    "020d"  # structure of 13 bare values
    "0907" "4b464d5f303031"  # list version "KFM_001"
    "0910" "36393730363331343032363134343736"  # meter ID "6970631402614476"
    "0908" "4d41333034483345"  # meter type "MA304H3E"
    "0600002611"  # P+ 9745 W
    "0600000000"  # P- 0 W
    "0600000000"  # Q+ 0 var
    "06000001b3"  # Q- 435 var
    "0600008415"  # I1 33813 mA
    "0600006dc7"  # I2 28103 mA
    "0600004702"  # I3 18178 mA
    "0600000878"  # U1 2168 -> 216.8 V
    "0600000000"  # U2 0 (IT grid: no neutral)
    "060000088c"  # U3 2188 -> 218.8 V
)
# fmt: on


def test_kaifa_list_2_gets_codes_and_implied_scalers_from_its_positions() -> None:
    message = decode(KAIFA_LIST_2_THREE_PHASE)
    assert message.profile == "kaifa-no"
    assert message.list_id == "KFM_001"
    assert message.shape == "positional"
    assert message.layout == "list 2, three-phase"
    assert triples(message) == [
        ("1.1.0.2.129.255", "KFM_001", None),
        ("0.0.96.1.0.255", "6970631402614476", None),
        ("0.0.96.1.7.255", "MA304H3E", None),
        ("1.0.1.7.0.255", 9745, "W"),
        ("1.0.2.7.0.255", 0, "W"),
        ("1.0.3.7.0.255", 0, "var"),
        ("1.0.4.7.0.255", 435, "var"),
        ("1.0.31.7.0.255", 33.813, "A"),
        ("1.0.51.7.0.255", 28.103, "A"),
        ("1.0.71.7.0.255", 18.178, "A"),
        ("1.0.32.7.0.255", 216.8, "V"),
        ("1.0.52.7.0.255", 0.0, "V"),
        ("1.0.72.7.0.255", 218.8, "V"),
    ]


# fmt: off
KAIFA_LIST_3_SINGLE_PHASE = bytes.fromhex(
    "0f"  # data-notification
    "40000000"  # long-invoke-id-and-priority
    "090c" "07e40119060e000aff800000"  # date-time 2020-01-25 14:00:10
    "020e"  # structure of 14 bare values
    "0907" "4b464d5f303031"  # "KFM_001"
    "0910" "36393730363331343032363134343737"  # meter ID
    "0908" "4d41313035483245"  # meter type "MA105H2E"
    "06000005dc"  # P+ 1500 W
    "0600000000"  # P- 0 W
    "0600000000"  # Q+ 0 var
    "0600000064"  # Q- 100 var
    "0600001a2c"  # I1 6700 mA
    "06000008f2"  # U1 2290 -> 229.0 V
    "090c" "07e40119060e000aff800000"  # clock
    "060004be76"  # A+ 310902 Wh
    "0600000000"  # A- 0 Wh
    "060000d922"  # R+ 55586 varh
    "0600030feb"  # R- 200683 varh
)
# fmt: on


def test_kaifa_list_3_single_phase_includes_clock_and_energies() -> None:
    message = decode(KAIFA_LIST_3_SINGLE_PHASE)
    assert message.layout == "list 3, single-phase"
    values = by_name(message)
    assert values["current_l1"] == 6.7
    assert values["voltage_l1"] == 229.0
    assert values["clock"] == "2020-01-25T14:00:10"
    assert values["active_energy_import"] == 310902
    assert values["reactive_energy_export"] == 200683


# A Kaifa MA304H4PSE in Sweden, list 3, as posted on the Gurux forum (node 23817):
# a complete HDLC frame with its checksums.
# fmt: off
KAIFA_SE_LIST_3_FRAME = bytes.fromhex(
    "7e a0 9a 01 00 01 10 12 10 e6 e7 00 0f 40 00 00 00 09 0c 07 e7 0a 14 05 12 3a 0f ff"
    " ff c4 00 02 12 09 07 4b 46 4d 5f 30 30 31 09 10 37 33 34 30 31 35 37 30 33 30 39 30"
    " 34 30 34 35 09 07 4d 41 33 30 34 48 34 06 00 00 01 a9 06 00 00 00 00 06 00 00 00 00"
    " 06 00 00 00 04 06 00 00 00 61 06 00 00 01 ac 06 00 00 05 c4 06 00 00 08 fa 06 00 00"
    " 08 fe 06 00 00 09 0f 09 0c 07 e7 0a 14 05 12 3a 0f ff ff c4 00 06 00 07 4b b5 06 00"
    " 00 00 00 06 00 00 64 3c 06 00 02 6e f6 4b 0b 7e"
)
# fmt: on


def test_real_kaifa_frame_from_sweden_decodes_with_the_norwegian_profile() -> None:
    [message] = Pipeline().feed(KAIFA_SE_LIST_3_FRAME)
    assert isinstance(message, Message)
    assert message.profile == "kaifa-no"
    assert message.meter_time == "2023-10-20T18:58:15+01:00"
    values = by_name(message)
    assert values["meter_type"] == "MA304H4"
    assert values["active_power_import"] == 425
    assert [values[f"current_l{k}"] for k in (1, 2, 3)] == [0.097, 0.428, 1.476]
    assert [values[f"voltage_l{k}"] for k in (1, 2, 3)] == [229.8, 230.2, 231.9]
    assert values["active_energy_import"] == 478133
    assert values["reactive_energy_export"] == 159478


# The Wiener Netze push of a Landis+Gyr E450, decrypted, as posted in Tasmota
# issue 8790 (the AM550 sends the same nine values).
# fmt: off
WIENER_NETZE = bytes.fromhex(
    "0f"  # data-notification
    "00000001"  # long-invoke-id-and-priority
    "0c" "07e7030b060d1b2fff800000"  # date-time 2023-03-11 13:27:47
    "0209"  # structure of 9 bare values
    "090c" "07e7030b060d1b2fff800000"  # the same date-time
    "06004df0c8"  # +A 5107912 Wh
    "0600000000"  # -A 0 Wh
    "06001131f7"  # +R 1126903 varh
    "060008a600"  # -R 566784 varh
    "06000000e6"  # +P 230 W
    "0600000000"  # -P 0 W
    "0600000058"  # +Q 88 var
    "0600000015"  # -Q 21 var
)
# fmt: on


def test_wiener_netze_nine_values_are_named_in_order() -> None:
    message = decode(WIENER_NETZE, bytes.fromhex("49534b697456f2c3"))
    assert message.profile == "wiener-netze"
    assert triples(message) == [
        ("0.0.1.0.0.255", "2023-03-11T13:27:47", None),
        ("1.0.1.8.0.255", 5107912, "Wh"),
        ("1.0.2.8.0.255", 0, "Wh"),
        ("1.0.3.8.0.255", 1126903, "varh"),
        ("1.0.4.8.0.255", 566784, "varh"),
        ("1.0.1.7.0.255", 230, "W"),
        ("1.0.2.7.0.255", 0, "W"),
        ("1.0.3.7.0.255", 88, "var"),
        ("1.0.4.7.0.255", 21, "var"),
    ]


# A Landis+Gyr E450 in Austria, decrypted, as posted in Tasmota issue 23027.
# fmt: off
LANDIS_GYR_E450_AT = bytes.fromhex(
    "0f"  # data-notification
    "00000001"  # long-invoke-id-and-priority
    "00"  # no date-time
    "020b"  # structure of 11 bare values
    "1200e4"  # U1 228 V
    "1200e2"  # U2 226 V
    "1200e6"  # U3 230 V
    "12030d"  # I1 781 -> 7.81 A
    "1205ca"  # I2 1482 -> 14.82 A
    "120283"  # I3 643 -> 6.43 A
    "0600001538"  # +P 5432 W
    "0600000000"  # -P 0 W
    "060263bd78"  # +A 40091000 Wh
    "0600000000"  # -A 0 Wh
    "0908" "3330303532303032"  # meter number "30052002"
)
# fmt: on


def test_landis_gyr_e450_austrian_eleven_values_are_named_in_order() -> None:
    message = decode(LANDIS_GYR_E450_AT)
    assert message.profile == "landis-gyr-e450-at"
    assert triples(message) == [
        ("1.0.32.7.0.255", 228, "V"),
        ("1.0.52.7.0.255", 226, "V"),
        ("1.0.72.7.0.255", 230, "V"),
        ("1.0.31.7.0.255", 7.81, "A"),
        ("1.0.51.7.0.255", 14.82, "A"),
        ("1.0.71.7.0.255", 6.43, "A"),
        ("1.0.1.7.0.255", 5432, "W"),
        ("1.0.2.7.0.255", 0, "W"),
        ("1.0.1.8.0.255", 40_091_000, "Wh"),
        ("1.0.2.8.0.255", 0, "Wh"),
        ("0.0.96.1.0.255", "30052002", None),
    ]


# fmt: off
UNKNOWN_POSITIONAL = bytes.fromhex(
    "0f"  # data-notification
    "00000001"  # long-invoke-id-and-priority
    "00"  # no date-time
    "0203"  # structure of 3 bare values
    "1200e6"  # 230
    "0600001234"  # 4660
    "0904" "41424344"  # "ABCD"
)
# fmt: on


def test_unknown_positional_list_is_output_raw_with_a_hint_naming_the_profile_fields() -> None:
    message = decode(UNKNOWN_POSITIONAL, b"XYZ\x00\x00\x00\x00\x01")
    assert triples(message) == [(None, 230, None), (None, 4660, None), (None, "ABCD", None)]
    assert message.profile is None
    hint = str(message.hint)
    assert "3 [[position]] entries" in hint and "scaler" in hint
    assert 'manufacturer = "XYZ"' in hint
    assert "long-unsigned, double-long-unsigned, octet-string" in hint


def test_a_list_nested_one_level_deeper_is_unwrapped() -> None:
    body_start = KAIFA_LIST_2_THREE_PHASE.index(bytes.fromhex("020d0907"))
    wrapped = (
        KAIFA_LIST_2_THREE_PHASE[:body_start]
        + bytes.fromhex("0101")  # array of 1 around the structure of 13
        + KAIFA_LIST_2_THREE_PHASE[body_start:]
    )
    assert triples(decode(wrapped)) == triples(decode(KAIFA_LIST_2_THREE_PHASE))


def test_positional_layout_does_not_apply_when_the_types_do_not_fit() -> None:
    # Nine values like the Wiener Netze list, but text where +A (a number) belongs.
    apdu = WIENER_NETZE.replace(bytes.fromhex("06004df0c8"), bytes.fromhex("0904" + "41424344"))
    message = decode(apdu)
    assert message.profile is None
    assert all(r.obis is None for r in message.readings)
    assert "9 [[position]] entries" in str(message.hint)


# -- the notification header -------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "meter_time"),
    [
        ("00", None),  # no date-time
        ("0c" + "07e40107020e2f14ff800000", "2020-01-07T14:47:20"),  # length + 12 bytes
        ("090c" + "07e40107020e2f14ff800000", "2020-01-07T14:47:20"),  # octet-string (Kaifa)
        ("0c" + "07e001040117222300ffc400", "2016-01-04T23:34:35+01:00"),  # with deviation
    ],
)
def test_header_date_time_in_each_encoding(header: str, meter_time: str | None) -> None:
    apdu = bytes.fromhex("0f00000001" + header + "0201" + "1101")
    assert parse_data_notification(apdu).meter_time == meter_time


@pytest.mark.parametrize(
    "apdu",
    [
        "0f00000001",  # no date-time and no body
        "0f00000001" + "0b" + "0201" + "1101",  # date-time length 11
        "0f00000001" + "0c" + "07e4",  # ends inside the date-time
        "0f00000001" + "00",  # no body
        "0e00000001" + "00" + "1101",  # not a data-notification
    ],
)
def test_malformed_notification_headers_raise_apdu_error(apdu: str) -> None:
    with pytest.raises(ApduError):
        parse_data_notification(bytes.fromhex(apdu))


def test_malformed_body_raises_apdu_error_lazily_and_in_build() -> None:
    apdu = bytes.fromhex("0f00000001" + "00" + "0203" + "1101")  # structure of 3, 1 element
    notification = parse_data_notification(apdu, lazy=True)
    with pytest.raises(ApduError, match="notification body"):
        ReadingsBuilder().build(notification)
    with pytest.raises(ApduError, match="notification body"):
        parse_data_notification(apdu)


# -- values ---------------------------------------------------------------------


def test_date_and_time_types_are_presented_as_iso_text() -> None:
    # fmt: off
    apdu = bytes.fromhex(
        "0f00000001" "00"
        "0203"  # structure of 3 bare values
        "19" "07e40107020e2f14ff800000"  # date-time (tag 0x19)
        "1a" "07e4010702"  # date
        "1b" "0e2f14ff"  # time
    )
    # fmt: on
    assert [r.value for r in decode(apdu).readings] == [
        "2020-01-07T14:47:20",
        "2020-01-07",
        "14:47:20",
    ]


def test_octet_strings_show_as_text_when_printable_and_hex_otherwise() -> None:
    # fmt: off
    apdu = bytes.fromhex(
        "0f00000001" "00"
        "0202"  # structure of 2 bare values
        "0908" "5241544532000000"  # "RATE2" NUL-padded
        "0903" "00ff10"  # not text
    )
    # fmt: on
    assert [r.value for r in decode(apdu).readings] == ["RATE2", "00ff10"]


def test_extract_reports_shape_and_list_id() -> None:
    body = parse_data_notification(KAMSTRUP_NO_LIST_1).body
    extracted = extract(body)
    assert extracted.shape == "obis-value pairs"
    assert extracted.list_id == "Kamstrup_V0001"
    assert extracted.count == 25


# -- plans: a layout seen before is not decoded again -------------------------------


def test_second_message_of_a_layout_gets_its_own_values() -> None:
    builder = ReadingsBuilder()
    first = decode(KAIFA_LIST_2_THREE_PHASE, builder=builder)
    changed = KAIFA_LIST_2_THREE_PHASE.replace(
        bytes.fromhex("0600002611"), bytes.fromhex("06000004d2")
    )  # P+ 9745 -> 1234 W
    second = decode(changed, builder=builder)
    assert by_name(first)["active_power_import"] == 9745
    assert by_name(second)["active_power_import"] == 1234
    assert triples(second)[4:] == triples(first)[4:]


def test_messages_of_one_layout_share_their_labels_and_build_readings_only_when_read() -> None:
    builder = ReadingsBuilder()
    first, second = (decode(KAIFA_LIST_2_THREE_PHASE, builder=builder) for _ in range(2))
    other = decode(AIDON_LIST_2, builder=builder)
    assert first.list_layout is second.list_layout is not other.list_layout
    assert first.labels is second.labels and first.labels is not other.labels
    with mock.patch("amsread.model.Reading", side_effect=AssertionError("made")):
        assert first.reading_count == 13 and len(first.values) == 13  # no Reading made
        assert first.meter_id == second.meter_id
    assert triples(first) == triples(second)  # reading them makes them
    assert first.readings is first.readings  # once


def test_same_size_message_with_another_obis_code_is_decoded_afresh() -> None:
    builder = ReadingsBuilder()
    decode(AIDON_LIST_2, builder=builder)
    other = AIDON_LIST_2.replace(bytes.fromhex("0100470700ff"), bytes.fromhex("0100330700ff"))
    names = [r.name for r in decode(other, builder=builder).readings]
    assert "current_l2" in names and "current_l3" not in names


def test_leading_date_time_that_turns_invalid_is_kept_as_a_value() -> None:
    builder = ReadingsBuilder()
    decode(AUSTRIA_TRIPLETS_WITHOUT_HEADER_TIME, builder=builder)
    invalid = AUSTRIA_TRIPLETS_WITHOUT_HEADER_TIME.replace(
        bytes.fromhex("07e70601040c0005ffff8880"), bytes.fromhex("ffff0000ffffffffff800000")
    )
    message = decode(invalid, builder=builder)
    assert message.meter_time is None
    assert triples(message)[0] == (None, "ffff0000ffffffffff800000", None)


_VALUE_FIELDS = [
    # (offset of a value field in KAMSTRUP_NO_LIST_2_SINGLE_PHASE, its size)
    (KAMSTRUP_NO_LIST_2_SINGLE_PHASE.index(bytes.fromhex("06000003e8")) + 1, 4),
    (KAMSTRUP_NO_LIST_2_SINGLE_PHASE.index(bytes.fromhex("06000001b8")) + 1, 4),
    (KAMSTRUP_NO_LIST_2_SINGLE_PHASE.index(bytes.fromhex("1200e6")) + 1, 2),
    (KAMSTRUP_NO_LIST_2_SINGLE_PHASE.index(bytes.fromhex("060007a120")) + 1, 4),
    (KAMSTRUP_NO_LIST_2_SINGLE_PHASE.index(bytes.fromhex("090c07e50b0f")) + 2, 12),
]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=12, max_size=12), min_size=3, max_size=3))
def test_cached_layout_gives_the_same_readings_as_a_fresh_decode(
    fillers: list[bytes],
) -> None:
    warm = ReadingsBuilder()
    decode(KAMSTRUP_NO_LIST_2_SINGLE_PHASE, builder=warm)
    for filler in fillers:
        apdu = bytearray(KAMSTRUP_NO_LIST_2_SINGLE_PHASE)
        for offset, size in _VALUE_FIELDS:
            apdu[offset : offset + size] = filler[:size]
        cached = decode(bytes(apdu), builder=warm)
        fresh = decode(bytes(apdu), builder=ReadingsBuilder())
        assert triples(cached) == triples(fresh)
        assert cached.meter_time == fresh.meter_time


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=120))
def test_any_body_gives_a_message_or_apdu_error(body: bytes) -> None:
    builder = ReadingsBuilder()
    apdu = bytes.fromhex("0f0000000100") + body
    for _ in range(2):  # the second time through the cached plan
        try:
            message = builder.build(parse_data_notification(apdu, lazy=True))
        except ApduError:
            continue
        assert isinstance(message, Message)


# -- user profiles -------------------------------------------------------------------


def test_user_profile_scale_multiplies_currents_of_a_current_transformer_meter() -> None:
    ct = parse_profile(
        {
            "name": "aidon-ct-100-5",
            "sources": ["my meter's current transformers, 100/5 A"],
            "match": {"list_id": "AIDON_V0001"},
            "implied": [
                {"obis": "1.0.31.7.0.255", "scale": 20},
                {"obis": "1.0.71.7.0.255", "scale": 20},
                {"obis": "1.0.1.7.0.255", "scale": 20},
            ],
        },
        "ct.toml",
    )
    message = decode(AIDON_LIST_2, builder=ReadingsBuilder(ProfileSet([ct])))
    values = by_name(message)
    assert message.profile == "aidon-ct-100-5"
    assert values["current_l1"] == 132.0  # 6.6 A x 20, the sent scaler still applies
    assert values["active_power_import"] == 36400
    assert values["voltage_l1"] == 232.6  # no rule: unchanged


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_any_bytes_after_the_notification_tag_parse_or_raise_apdu_error(rest: bytes) -> None:
    try:
        notification = parse_data_notification(b"\x0f" + rest)
    except ApduError:
        return
    assert notification.body_bytes
