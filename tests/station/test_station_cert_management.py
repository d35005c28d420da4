"""Certificate management gaps against an independent CSMS (mobilityhouse ``ocpp``): a
CertificateSigned not valid yet (2.0.1 errata 2025-01, A02.FR.06 / A03.FR.06), the A03 renewal
that got no certificate starting again by itself, the store's capacity (1.6 whitepaper
M05.FR.03 ``CertificateStoreMaxLength``; 2.0.1 ``SecurityCtrlr.CertificateEntries``) and
``AdditionalRootCertificateCheck`` (1.6 whitepaper M05.FR.08-13; 2.0.1 M05). Certificates are
made here with ``cryptography``; hash data is computed here from the DER.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any

import pytest
from ocpp.v16 import call as c16
from ocpp.v201 import call as c201

from ocppkit.station.certificates import (
    MAX_RENEWAL_RETRY,
    CertificateStore,
    StoreFullError,
    renewal_retry_delay,
)
from ocppkit.station.config16 import Configuration16
from ocppkit.station.device_model import VariableKey
from ocppkit.station.store import StationStore
from tests.station.test_station_certificates import (
    call,
    expected_hash,
    make_ca,
    own,
    pem,
    sign,
    signed_for,
    snake,
    station_with,
)

# -- A02.FR.06 / A03.FR.06 (2.0.1 errata 2025-01): a certificate not valid yet ----------------


async def test_v201_a02_fr_06_errata_not_yet_valid_certificate_is_rejected(
    store: StationStore,
) -> None:
    """OCPP 2.0.1 Edition 3 errata 2025-01 ("Disallow client certificates future validity
    date"): A02.FR.06 checks "that the current date (at the time of the update) is within the
    certificate's validity period", A02.FR.08 accepts only a valid one. A chain whose leaf
    starts tomorrow is Rejected with InvalidChargingStationCertificate; the pending key stays,
    so the same CSR signed valid from now is then Accepted."""
    async with station_with(store, "EMU-FUTURE", "2.0.1") as (station, rec, point):
        root_key, root = make_ca("CSMS Root")
        await call(
            point,
            c201.InstallCertificate(certificate_type="CSMSRootCertificate", certificate=pem(root)),
        )
        trig = c201.TriggerMessage(requested_message="SignChargingStationCertificate")
        assert (await call(point, trig)).status == "Accepted"
        csr = await signed_for(rec, 0)
        tomorrow = sign(csr, root_key, root, valid_days=(1, 365))
        reply = await call(point, c201.CertificateSigned(certificate_chain=pem(tomorrow)))
        assert reply.status == "Rejected"
        await rec.wait_count("SecurityEventNotification", 1)
        event = rec.of("SecurityEventNotification")[0]
        assert event["type"] == "InvalidChargingStationCertificate"
        assert "not valid now" in event["tech_info"]
        assert own(station)["chain"] == [] and own(station)["pending_key"]
        now_valid = sign(csr, root_key, root)
        reply = await call(point, c201.CertificateSigned(certificate_chain=pem(now_valid)))
        assert reply.status == "Accepted"
        assert own(station)["chain"] == [pem(now_valid)]


# -- A03: a renewal that got no certificate starts again by itself ----------------------------


def test_a03_renewal_retry_delay_continues_the_doubling_and_is_at_most_daily() -> None:
    """The wait before an A03 renewal starts again continues the flow's doubling (A02.FR.17/
    18): CertSigningWaitMinimum * 2**(CertSigningRepeatTimes + 1), doubled per failure, + up to
    a tenth of the first at random; never more than a day, never less than 1 s (0 would spin)."""
    rng = random.Random(7)
    # the flow waited 30, 60, 120, 240 s (CertSigningRepeatTimes 3); next would be 480 s
    for failures, low in enumerate((480, 960, 1920)):
        delay = renewal_retry_delay(failures, 30.0, 3, rng)
        assert low <= delay <= low + 48, (failures, delay)
    assert renewal_retry_delay(40, 30.0, 3, rng) == MAX_RENEWAL_RETRY
    assert renewal_retry_delay(0, 3600.0, 10**6, rng) == MAX_RENEWAL_RETRY
    assert 1.0 <= renewal_retry_delay(0, 0.0, 0, rng) <= 1.1


async def test_v201_a03_fr_02_renewal_without_certificate_starts_again_with_backoff(
    store: StationStore,
) -> None:
    """A03.FR.02 with CertSigningWaitMinimum 1 s, CertSigningRepeatTimes 0: the renewal flow
    sends SignCertificate once and gives up after 1 s (A02.FR.19); the station starts the
    renewal again by itself after 2 s (+ up to 10 %), then after 4 s, each time with a new key
    pair (A03.FR.02), one flow at a time (no two SignCertificates closer than the 1 s wait),
    keeping the old certificate meanwhile; the certificate for the last CSR ends it."""
    async with station_with(
        store, "EMU-RETRY", "2.0.1", certificate_renewal_margin=5 * 86400.0
    ) as (station, rec, point):
        for variable, value in (("CertSigningWaitMinimum", "1"), ("CertSigningRepeatTimes", "0")):
            reply = await call(
                point,
                c201.SetVariables(
                    set_variable_data=[
                        {
                            "attribute_value": value,
                            "component": {"name": "SecurityCtrlr"},
                            "variable": {"name": variable},
                        }
                    ]
                ),
            )
            assert reply.set_variable_result[0]["attribute_status"] == "Accepted"
        root_key, root = make_ca("CSMS Root")
        await call(
            point,
            c201.InstallCertificate(certificate_type="CSMSRootCertificate", certificate=pem(root)),
        )
        trig = c201.TriggerMessage(requested_message="SignChargingStationCertificate")
        assert (await call(point, trig)).status == "Accepted"
        first = await signed_for(rec, 0)
        three_days = sign(first, root_key, root, valid_days=(-1, 3))
        reply = await call(point, c201.CertificateSigned(certificate_chain=pem(three_days)))
        assert reply.status == "Accepted"
        await rec.wait_count("SignCertificate", 4, timeout=15)
        times = rec.times_of("SignCertificate")[1:4]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        # the flow's 1 s wait + the retry delay (2 s, then 4 s; + up to 10 %) + the 0.05 s
        # the flow lets the triggering reply go first
        assert 2.9 <= gaps[0] < 3.8, gaps
        assert 4.9 <= gaps[1] < 5.9, gaps
        all_times = rec.times_of("SignCertificate")
        assert min(b - a for a, b in itertools.pairwise(all_times[1:])) >= 0.9
        csrs = [kw["csr"] for kw in rec.of("SignCertificate")]
        assert len(set(csrs)) == len(csrs), "a new key pair for every renewal"
        assert own(station)["chain"] == [pem(three_days)], "kept until a new one comes"
        last = await signed_for(rec, len(csrs) - 1)
        renewed = sign(last, root_key, root)
        reply = await call(point, c201.CertificateSigned(certificate_chain=pem(renewed)))
        assert reply.status == "Accepted"
        assert own(station)["chain"] == [pem(renewed)]
        count = len(rec.of("SignCertificate"))
        await asyncio.sleep(2.5)
        assert len(rec.of("SignCertificate")) == count, "renewed: no more renewals"


# -- M05 capacity: 1.6 whitepaper M05.FR.03, 2.0.1 CertificateEntries -------------------------


async def test_v16_m05_fr_03_install_rejected_when_certificate_store_max_length_reached(
    store: StationStore,
) -> None:
    """Whitepaper M05.FR.03: with CertificateStoreMaxLength (20) certificates installed,
    InstallCertificate is Rejected (CertificateStatusEnumType Rejected: "the CPO tries to
    install more certificates than allowed"); re-installing one already there is still
    Accepted (the store does not grow); after a DeleteCertificate there is room again."""
    async with station_with(store, "EMU-FULL16", "1.6") as (_station, _rec, point):
        conf = await call(point, c16.GetConfiguration(key=["CertificateStoreMaxLength"]))
        assert conf.configuration_key[0]["value"] == "20"
        roots = [make_ca(f"Root {n}")[1] for n in range(21)]
        types = itertools.cycle(["CentralSystemRootCertificate", "ManufacturerRootCertificate"])
        for root, cert_type in zip(roots[:20], types, strict=False):
            reply = await call(
                point, c16.InstallCertificate(certificate_type=cert_type, certificate=pem(root))
            )
            assert reply.status == "Accepted"
        full = await call(
            point,
            c16.InstallCertificate(
                certificate_type="ManufacturerRootCertificate", certificate=pem(roots[20])
            ),
        )
        assert full.status == "Rejected", "M05.FR.03"
        again = await call(
            point,
            c16.InstallCertificate(
                certificate_type="CentralSystemRootCertificate", certificate=pem(roots[0])
            ),
        )
        assert again.status == "Accepted", "the same certificate again takes no more room"
        deleted = await call(
            point, c16.DeleteCertificate(certificate_hash_data=expected_hash(roots[1], roots[1]))
        )
        assert deleted.status == "Accepted"
        room = await call(
            point,
            c16.InstallCertificate(
                certificate_type="ManufacturerRootCertificate", certificate=pem(roots[20])
            ),
        )
        assert room.status == "Accepted"


async def certificate_entries(point: Any) -> str:
    reply = await call(
        point,
        c201.GetVariables(
            get_variable_data=[
                {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "CertificateEntries"}}
            ]
        ),
    )
    result = reply.get_variable_result[0]
    assert result["attribute_status"] == "Accepted"
    return str(result["attribute_value"])


async def test_v201_m05_certificate_entries_max_limit_rejects_install_when_full(
    store: StationStore,
) -> None:
    """2.0.1 SecurityCtrlr.CertificateEntries: its Actual value is the number of installed
    certificates, its maxLimit (20, reported by GetReport) the most the store holds; an
    InstallCertificate beyond it is Rejected (InstallCertificateStatusEnumType Rejected, as
    1.6 M05.FR.03); a DeleteCertificate makes room and lowers the count."""
    async with station_with(store, "EMU-FULL201", "2.0.1") as (_station, rec, point):
        assert await certificate_entries(point) == "0"
        report = await call(
            point,
            c201.GetReport(
                request_id=3,
                component_variable=[
                    {
                        "component": {"name": "SecurityCtrlr"},
                        "variable": {"name": "CertificateEntries"},
                    }
                ],
            ),
        )
        assert report.status == "Accepted"
        await rec.wait_count("NotifyReport", 1)
        (item,) = rec.of("NotifyReport")[0]["report_data"]
        assert item["variable_characteristics"]["max_limit"] == 20
        roots = [make_ca(f"Root {n}")[1] for n in range(21)]
        types = itertools.cycle(["CSMSRootCertificate", "V2GRootCertificate", "MORootCertificate"])
        for root, cert_type in zip(roots[:20], types, strict=False):
            reply = await call(
                point, c201.InstallCertificate(certificate_type=cert_type, certificate=pem(root))
            )
            assert reply.status == "Accepted"
        assert await certificate_entries(point) == "20"
        full = await call(
            point,
            c201.InstallCertificate(
                certificate_type="MORootCertificate", certificate=pem(roots[20])
            ),
        )
        assert full.status == "Rejected"
        assert await certificate_entries(point) == "20"
        deleted = await call(
            point, c201.DeleteCertificate(certificate_hash_data=expected_hash(roots[0], roots[0]))
        )
        assert deleted.status == "Accepted"
        assert await certificate_entries(point) == "19"
        room = await call(
            point,
            c201.InstallCertificate(
                certificate_type="MORootCertificate", certificate=pem(roots[20])
            ),
        )
        assert room.status == "Accepted"


# -- AdditionalRootCertificateCheck: 1.6 whitepaper M05.FR.08-13, 2.0.1 M05 -------------------


async def installed16(point: Any, cert_type: str) -> list[dict[str, str]]:
    reply = await call(point, c16.GetInstalledCertificateIds(certificate_type=cert_type))
    if reply.status == "NotFound":
        return []
    return [snake(d) for d in reply.certificate_hash_data]


async def test_v16_m05_fr_08_13_additional_root_certificate_check(store: StationStore) -> None:
    """AdditionalRootCertificateCheck true (the station's own, read-only setting): one
    CentralSystemRootCertificate plus a fallback (M05.FR.08). A new one not signed by the
    installed one is Rejected and nothing changes (M05.FR.10); one signed by it is Accepted and
    the old one kept as the fallback (M05.FR.11). A reconnection over ws:// (here after a
    Reset) verified no server certificate with the new root, so the fallback stays (M05.FR.12
    asks for a connection using the new root; test_station_cert_fallback has the wss:// one
    that removes it). The next one must be signed by the root it replaces (the new one), not
    by the fallback, which it then replaces as the fallback. ManufacturerRootCertificates are
    not restricted."""
    async with station_with(store, "EMU-ARCC16", "1.6") as (station, rec, point):
        behaviour: Any = station.behaviour
        blob = behaviour.config.to_dict()
        blob["values"]["AdditionalRootCertificateCheck"] = "true"
        behaviour.config = Configuration16.from_dict(blob)
        conf = await call(point, c16.GetConfiguration(key=["AdditionalRootCertificateCheck"]))
        assert conf.configuration_key[0]["value"] == "true"
        assert conf.configuration_key[0]["readonly"] is True
        csms = "CentralSystemRootCertificate"

        old_key, old = make_ca("CSMS Root 1")
        first = await call(
            point, c16.InstallCertificate(certificate_type=csms, certificate=pem(old))
        )
        assert first.status == "Accepted", "nothing to replace yet"
        _, stranger = make_ca("CSMS Root 2")
        refused = await call(
            point, c16.InstallCertificate(certificate_type=csms, certificate=pem(stranger))
        )
        assert refused.status == "Rejected", "M05.FR.10"
        assert await installed16(point, csms) == [expected_hash(old, old)]
        for name in ("Maker A", "Maker B"):
            maker = await call(
                point,
                c16.InstallCertificate(
                    certificate_type="ManufacturerRootCertificate",
                    certificate=pem(make_ca(name)[1]),
                ),
            )
            assert maker.status == "Accepted"

        new_key, new = make_ca("CSMS Root 2", (old_key, old))
        replaced = await call(
            point, c16.InstallCertificate(certificate_type=csms, certificate=pem(new))
        )
        assert replaced.status == "Accepted", "M05.FR.11"
        assert await installed16(point, csms) == [expected_hash(old, old), expected_hash(new, old)]
        certs = station.state_blob()["model"]["certs"]
        assert certs["fallback"] == {csms: pem(old)}

        assert (await call(point, c16.Reset(type="Soft"))).status == "Accepted"
        await rec.wait_count("BootNotification", 2)
        await station.wait_for_state(lambda s: s["online"] and s["boots"] == 2, 10)
        point = rec.points["EMU-ARCC16"]
        assert await installed16(point, csms) == [expected_hash(old, old), expected_hash(new, old)]
        assert station.state_blob()["model"]["certs"]["fallback"] == {csms: pem(old)}

        _, by_the_old = make_ca("CSMS Root 3", (old_key, old))
        stale = await call(
            point, c16.InstallCertificate(certificate_type=csms, certificate=pem(by_the_old))
        )
        assert stale.status == "Rejected", "signed by the fallback, not the installed root"
        _, newest = make_ca("CSMS Root 3", (new_key, new))
        ok = await call(
            point, c16.InstallCertificate(certificate_type=csms, certificate=pem(newest))
        )
        assert ok.status == "Accepted"
        assert await installed16(point, csms) == [
            expected_hash(new, old),
            expected_hash(newest, new),
        ]
        assert station.state_blob()["model"]["certs"]["fallback"] == {csms: pem(new)}


async def test_v201_m05_additional_root_certificate_check_with_certificate_entries(
    store: StationStore,
) -> None:
    """2.0.1 SecurityCtrlr.AdditionalRootCertificateCheck true: a CSMSRootCertificate not
    signed by the installed one is Rejected; one signed by it is Accepted with the old one as
    the fallback (CertificateEntries counts both). A reconnection over ws:// (Reset Immediate)
    verified no server certificate with the new root: the fallback stays (M05.FR.12).
    V2GRootCertificates are not restricted."""
    async with station_with(store, "EMU-ARCC201", "2.0.1") as (station, rec, point):
        behaviour: Any = station.behaviour
        behaviour.dm.set_actual(
            VariableKey("SecurityCtrlr", "AdditionalRootCertificateCheck"), "true"
        )
        csms = "CSMSRootCertificate"
        old_key, old = make_ca("CSMS Root 1")
        for cert_type, cert in ((csms, old), ("V2GRootCertificate", make_ca("V2G A")[1])):
            reply = await call(
                point, c201.InstallCertificate(certificate_type=cert_type, certificate=pem(cert))
            )
            assert reply.status == "Accepted"
        stranger = await call(
            point,
            c201.InstallCertificate(certificate_type=csms, certificate=pem(make_ca("Other")[1])),
        )
        assert stranger.status == "Rejected"
        v2g = await call(
            point,
            c201.InstallCertificate(
                certificate_type="V2GRootCertificate", certificate=pem(make_ca("V2G B")[1])
            ),
        )
        assert v2g.status == "Accepted"
        _, new = make_ca("CSMS Root 2", (old_key, old))
        replaced = await call(
            point, c201.InstallCertificate(certificate_type=csms, certificate=pem(new))
        )
        assert replaced.status == "Accepted"
        assert await certificate_entries(point) == "4"
        assert (await call(point, c201.Reset(type="Immediate"))).status == "Accepted"
        await rec.wait_count("BootNotification", 2)
        await station.wait_for_state(lambda s: s["online"] and s["boots"] == 2, 10)
        point = rec.points["EMU-ARCC201"]
        assert await certificate_entries(point) == "4"
        listed = await call(point, c201.GetInstalledCertificateIds(certificate_type=[csms]))
        assert [snake(i["certificate_hash_data"]) for i in listed.certificate_hash_data_chain] == [
            expected_hash(old, old),
            expected_hash(new, old),
        ]


# -- the store itself --------------------------------------------------------------------------


def test_store_fallback_and_issuers_survive_to_dict_and_capacity_counts_the_fallback() -> None:
    """The fallback root (M05.FR.11) and a retired issuer (for the child's RFC 6960 hash data)
    are persisted; the capacity (M05.FR.03) counts the fallback; a replacement that does not
    grow the store is allowed when full."""
    certs = CertificateStore()
    old_key, old = make_ca("CSMS Root 1")
    _, new = make_ca("CSMS Root 2", (old_key, old))
    certs.install("CSMSRootCertificate", pem(old), max_entries=1, replace_signed=True)
    with pytest.raises(StoreFullError):
        certs.install("V2GRootCertificate", pem(make_ca("V2G")[1]), max_entries=1)
    with pytest.raises(StoreFullError):  # the fallback counts
        certs.install("CSMSRootCertificate", pem(new), max_entries=1, replace_signed=True)
    certs.install("CSMSRootCertificate", pem(new), max_entries=2, replace_signed=True)
    restored = CertificateStore.from_dict(certs.to_dict())
    assert restored.fallback == {"CSMSRootCertificate": pem(old)}
    assert restored.drop_fallbacks() == ["CSMSRootCertificate"]
    assert restored.count() == 1 and restored.issuers == [pem(old)]
    again = CertificateStore.from_dict(restored.to_dict())
    ((cert_type, data),) = again.installed()
    assert cert_type == "CSMSRootCertificate"
    assert data.matches(expected_hash(new, old)), "the issuer's key, though it is gone"
