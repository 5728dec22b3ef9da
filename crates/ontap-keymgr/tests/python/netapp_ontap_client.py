#!/usr/bin/env python3
"""NetApp's own Python client, unmodified, against ontap-keymgr.

Run by `crates/ontap-keymgr/tests/netapp_ontap.rs`, which starts the service and the PyKMIP
servers and passes everything through environment variables (NETAPP_TEST_*). Uses only the
`netapp_ontap` library's resources, exactly as an automation script would: if the service answers
something the library cannot take, a step fails here rather than being worked around.

Usage: netapp_ontap_client.py [PHASE]. `main` (the default) builds everything from an empty
service; the other phases run after the test restarted the service on the same data dir with a
changed configuration or a damaged database, and check the seed error that situation raises.

Exits 0 when every step passed; prints one line per step.
"""

import os
import sys
import traceback

import netapp_ontap
from netapp_ontap import HostConnection, NetAppRestError, config
from netapp_ontap.resources import KeyServer, SecurityCertificate, SecurityKeyManager, Svm

ENV = os.environ


def env(name):
    value = ENV.get(f"NETAPP_TEST_{name}")
    assert value, f"NETAPP_TEST_{name} is not set"
    return value


def read(path):
    with open(path, encoding="utf-8") as file:
        return file.read()


def step(text):
    print(f"ok   {text}", flush=True)


def expect_error(action, status, code, target=None):
    """Runs `action`, which must fail with this HTTP status and ONTAP error code."""
    try:
        action()
    except NetAppRestError as err:
        body = err.response_body
        assert body is not None, f"expected HTTP {status} {code}, got a client-side error: {err}"
        error = body.get("error", {})
        got = (err.status_code, error.get("code"))
        assert got == (status, code), f"expected {(status, code)}, got {got}: {body}"
        assert error.get("message"), f"no message: {body}"
        if target is not None:
            assert error.get("target") == target, f"expected target {target!r}: {body}"
        return error
    raise AssertionError(f"expected HTTP {status} code {code}, but the request succeeded")


class Settings:
    """Sets library configuration values for a block and restores them after."""

    def __init__(self, **values):
        self.values = values
        self.saved = {}

    def __enter__(self):
        for name, value in self.values.items():
            self.saved[name] = getattr(config, name)
            setattr(config, name, value)

    def __exit__(self, *_):
        for name, value in self.saved.items():
            setattr(config, name, value)


def servers_of(km_uuid):
    return {ks.server for ks in KeyServer.get_collection(km_uuid, fields="server,timeout")}


def connect():
    port = int(env("PORT"))
    config.CONNECTION = HostConnection(
        env("HOST"), port=port, username=env("USER"), password=env("PASSWORD"), verify=False
    )
    step(f"connected to {env('HOST')}:{port} with netapp_ontap {netapp_ontap.__version__}")


def the_key_manager():
    """The key manager of svm1, which the main phase created, found as a script would find it
    (and checked against the uuid the test read before the restart)."""
    found = list(SecurityKeyManager.get_collection(**{"svm.name": "svm1"}))
    assert [km.uuid for km in found] == [env("KEY_MANAGER")], found
    return found[0].uuid


def phase_main():
    good_a = int(env("GOOD_A_PORT"))
    good_b = int(env("GOOD_B_PORT"))
    first, second = f"127.0.0.1:{good_a}", f"localhost:{good_a}"
    third, fourth = f"127.0.0.1:{good_b}", f"localhost:{good_b}"
    credentialed = env("CREDENTIALED")
    kmip_user, kmip_password = env("KMIP_USERNAME"), env("KMIP_PASSWORD")
    untrusted, rejecting, refused = env("UNTRUSTED"), env("REJECTING"), env("REFUSED")
    no_common_cipher = env("NO_COMMON_CIPHER")

    # 1. Connection.
    connect()

    # 2. SVM.
    svm = Svm(name="svm1")
    svm.post(hydrate=True)
    assert svm.uuid, svm
    assert svm.name == "svm1", svm
    step(f"2. Svm svm1 created, uuid {svm.uuid}")

    # 3. Certificates.
    client = SecurityCertificate(
        type="client",
        public_certificate=read(env("CLIENT_CERT")),
        private_key=read(env("CLIENT_KEY")),
        svm={"name": "svm1"},
        name="kmip-client",
    )
    client.post(hydrate=True)
    assert client.uuid and client.name == "kmip-client" and client.type == "client", client
    assert not hasattr(client, "private_key"), f"private key returned: {client}"
    ca = SecurityCertificate(
        type="server_ca",
        public_certificate=read(env("SERVER_CA")),
        svm={"name": "svm1"},
        name="kmip-ca",
    )
    ca.post(hydrate=True)
    assert ca.uuid and ca.name == "kmip-ca" and ca.type == "server_ca", ca
    step(f"3. SecurityCertificate client {client.uuid} and server_ca {ca.uuid}")

    # 4. External key manager with one server.
    km = SecurityKeyManager(
        svm={"name": "svm1"},
        external={
            "client_certificate": {"name": "kmip-client"},
            "server_ca_certificates": [{"name": "kmip-ca"}],
            "servers": [{"server": first}],
        },
    )
    km.post(hydrate=True)
    assert km.uuid, km
    assert km.external.servers[0].server == first, km
    assert km.external.client_certificate.uuid == client.uuid, km
    assert [c.uuid for c in km.external.server_ca_certificates] == [ca.uuid], km
    step(f"4. SecurityKeyManager {km.uuid} with server {first}")

    # 5. One key server.
    ks = KeyServer(km.uuid, server=second)
    ks.post(hydrate=True)
    assert ks.server == second, ks
    assert ks.timeout == 25, ks
    step(f"5. KeyServer {second} added; timeout {ks.timeout}")

    # 6. Two at once, then the list; the key manager is now full.
    KeyServer.post_collection([KeyServer(server=third), KeyServer(server=fourth)], km.uuid)
    assert servers_of(km.uuid) == {first, second, third, fourth}, servers_of(km.uuid)
    listed = list(KeyServer.get_collection(km.uuid, fields="server,timeout"))
    assert all(k.timeout == 25 for k in listed), listed
    expect_error(lambda: KeyServer(km.uuid, server=credentialed).post(), 400, "65536038")
    step("6. post_collection added two; get_collection lists four; a fifth: 65536038")

    # 7. Connectivity.
    ks = KeyServer(km.uuid, server=first)
    ks.get(fields="connectivity")
    assert ks.server == first, ks
    assert ks.connectivity.cluster_availability is True, ks
    states = ks.connectivity.node_states
    assert states and all(s.state == "available" and s.node.name for s in states), ks
    step(f"7. connectivity of {first}: available on {len(states)} nodes")

    # 8. PATCH: timeout, secondary key servers, credential rules.
    ks.timeout = 40
    ks.patch()
    check = KeyServer(km.uuid, server=first)
    check.get(fields="timeout")
    assert check.timeout == 40, check
    ks = KeyServer(km.uuid, server=first)
    ks.secondary_key_servers = ["ks2.example.com"]
    ks.patch()
    check = KeyServer(km.uuid, server=first)
    check.get(fields="secondary_key_servers")
    assert check.secondary_key_servers == ["ks2.example.com"], check
    # The key manager shows them as ONTAP does there: a comma-delimited string.
    whole = SecurityKeyManager(uuid=km.uuid)
    whole.get()
    shown = {s.server: getattr(s, "secondary_key_servers", None) for s in whole.external.servers}
    assert shown[first] == "ks2.example.com", shown
    # (A PATCH sends what changed since construction or the last get: set fields afterwards.)
    only_user = KeyServer(km.uuid, server=second)
    only_user.username = "someone"
    expect_error(only_user.patch, 400, "65536846", target="password")
    only_password = KeyServer(km.uuid, server=second)
    only_password.password = "p"
    expect_error(only_password.patch, 400, "65536845", target="username")
    step("8. PATCH timeout 40, secondary_key_servers; "
         "username alone 65536846, password alone 65536845")

    # 9. Errors that need no KMIP check.
    expect_error(
        lambda: KeyServer.post_collection(
            [KeyServer(server=credentialed), KeyServer(server=credentialed)], km.uuid
        ),
        400,
        "65536871",
    )
    expect_error(lambda: KeyServer(km.uuid, server=first).post(), 400, "65536870")
    expect_error(
        lambda: KeyServer("00000000-0000-0000-0000-000000000000", server=credentialed).post(),
        404,
        "4",
    )
    onboard = SecurityKeyManager(onboard={"passphrase": "x" * 32})
    onboard.post()
    assert onboard.uuid and onboard.uuid != km.uuid, onboard
    expect_error(lambda: KeyServer(onboard.uuid, server=credentialed).post(), 400, "65536828")
    unknown = KeyServer(km.uuid, server="10.9.9.9:5696")
    unknown.timeout = 10
    expect_error(unknown.patch, 404, "65536843")
    too_long = KeyServer(km.uuid, server=first)
    too_long.timeout = 99
    try:
        too_long.patch()
        raise AssertionError("the library let timeout 99 through")
    except NetAppRestError as err:
        assert err.status_code is None, f"expected a client-side refusal: {err}"
    with Settings(ENABLE_VALIDATIONS=False):
        too_long = KeyServer(km.uuid, server=first)
        too_long.timeout = 99
        expect_error(too_long.patch, 400, "262197", target="timeout")
    assert config.ENABLE_VALIDATIONS is True
    step("9. 65536871, 65536870, 404/4, onboard 65536828, unknown server 65536843, timeout 99 400")

    # 10. DELETE.
    gone = KeyServer(km.uuid, server=fourth)
    gone.delete()
    expect_error(lambda: KeyServer(km.uuid, server=fourth).get(), 404, "65536843")
    expect_error(lambda: KeyServer(km.uuid, server=fourth).delete(), 404, "65536843")
    KeyServer(km.uuid, server=third).delete()
    assert servers_of(km.uuid) == {first, second}, servers_of(km.uuid)
    # Bulk again, asking for the records back (requests sends return_records=True).
    returned = KeyServer.post_collection(
        [KeyServer(server=third), KeyServer(server=fourth)],
        km.uuid,
        hydrate=True,
        return_records=True,
    )
    assert sorted(r.server for r in returned) == sorted([third, fourth]), returned
    assert all(r.timeout == 25 for r in returned), returned
    for record in returned:
        record.delete()
    assert servers_of(km.uuid) == {first, second}, servers_of(km.uuid)
    step(f"10. deleted {fourth} (then 404 65536843) and {third}; "
         "re-added with return_records, deleted")

    # 11. A server that demands a KMIP credential.
    # The library's schema makes username/password PATCH-only (KeyServer.postable_fields is
    # records, server): by default a POST sends {"server"} alone, the service's KMIP check then
    # goes without credential and the server refuses it.
    def credentialed_server(**fields):
        return KeyServer(km.uuid, server=credentialed, **fields)

    with_credential = credentialed_server(username=kmip_user, password=kmip_password)
    error = expect_error(with_credential.post, 400, "65536921")
    assert kmip_password not in error["message"], error
    # With config.STRICT_ACCESS_MODIFIERS off the library sends every field that is set.
    with Settings(STRICT_ACCESS_MODIFIERS=False):
        only_user = credentialed_server(username=kmip_user)
        expect_error(only_user.post, 400, "65536846", target="password")
        only_password = credentialed_server(password=kmip_password)
        expect_error(only_password.post, 400, "65536845", target="username")
        wrong = credentialed_server(username=kmip_user, password="wrong-secret-9")
        expect_error(wrong.post, 400, "65536921")
        with_credential = credentialed_server(username=kmip_user, password=kmip_password)
        with_credential.post(hydrate=True)
    assert with_credential.server == credentialed, with_credential
    assert with_credential.username == kmip_user, with_credential
    assert not hasattr(with_credential, "password"), f"password returned: {with_credential}"
    ks = KeyServer(km.uuid, server=credentialed)
    ks.username, ks.password = kmip_user, "not-the-secret"
    error = expect_error(ks.patch, 400, "65536921")
    assert "not-the-secret" not in error["message"], error
    ks.password = kmip_password
    ks.patch()
    check = KeyServer(km.uuid, server=credentialed)
    check.get(fields="*")
    assert check.username == kmip_user, check
    assert not hasattr(check, "password"), f"password returned: {check}"
    step("11. credentialed server: POST without credential 65536921; username alone 65536846, "
         "password alone 65536845, wrong 65536921; added; PATCH wrong 65536921, right 200")

    # 12. The KMIP check of new servers.
    error = expect_error(KeyServer(km.uuid, server=untrusted).post, 400, "66060338")
    assert untrusted in error["message"], error
    expect_error(KeyServer(km.uuid, server=rejecting).post, 400, "66060339")
    error = expect_error(KeyServer(km.uuid, server=no_common_cipher).post, 400, "66060340")
    assert "handshake_failure" in error["message"], error
    expect_error(KeyServer(km.uuid, server=refused).post, 400, "65536852")
    assert servers_of(km.uuid) == {first, second, credentialed}, servers_of(km.uuid)
    step("12. untrusted 66060338, rejecting 66060339, no common cipher 66060340, "
         "refused 65536852; nothing added")


def expect_svm_scope_refused(code):
    """Adding a key server to svm1's key manager and changing one both fail with `code`."""
    connect()
    km = the_key_manager()
    expect_error(KeyServer(km, server=f"127.0.0.1:{env('GOOD_B_PORT')}").post, 400, code)
    configured = KeyServer(km, server=f"127.0.0.1:{env('GOOD_A_PORT')}")
    configured.timeout = 10
    expect_error(configured.patch, 400, code)


def phase_old_version():
    """The cluster now runs ONTAP 9.5: SVM-scoped key managers are not supported."""
    expect_svm_scope_refused("65536822")
    step("cluster version 9.5.0: POST 65536822, PATCH 65536822")


def phase_metrocluster():
    """The cluster is now a MetroCluster: SVM-scoped key managers are refused."""
    expect_svm_scope_refused("65536824")
    step("MetroCluster: POST 65536824, PATCH 65536824")


def phase_certificate_gone():
    """The key manager's server CA certificate was removed behind the service's back."""
    connect()
    km = the_key_manager()
    new = KeyServer(km, server=f"127.0.0.1:{env('GOOD_B_PORT')}")
    expect_error(new.post, 400, "65536821", target="external.server_ca_certificates")
    step("server CA certificate gone: POST 65536821")


def phase_unreadable():
    """A stored key-server password no longer decrypts."""
    connect()
    km = env("KEY_MANAGER")
    expect_error(lambda: list(KeyServer.get_collection(km)), 500, "65536834")
    expect_error(KeyServer(km, server=f"127.0.0.1:{env('GOOD_B_PORT')}").post, 500, "65536834")
    expect_error(SecurityKeyManager(uuid=km).get, 500, "65536834")
    expect_error(lambda: list(SecurityKeyManager.get_collection()), 500, "65536834")
    step("unreadable key servers: GET and POST key servers, GET key manager(s): 65536834")


PHASES = {
    "main": phase_main,
    "old_version": phase_old_version,
    "metrocluster": phase_metrocluster,
    "certificate_gone": phase_certificate_gone,
    "unreadable": phase_unreadable,
}


if __name__ == "__main__":
    try:
        PHASES[sys.argv[1] if len(sys.argv) > 1 else "main"]()
        print("ALL STEPS PASSED", flush=True)
    except Exception:  # pylint: disable=broad-except
        traceback.print_exc()
        sys.exit(1)
