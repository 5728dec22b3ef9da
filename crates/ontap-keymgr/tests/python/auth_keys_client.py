#!/usr/bin/env python3
"""NetApp's own Python client, unmodified, with ontap-keymgr's authentication keys.

Run by `crates/ontap-keymgr/tests/http/auth_keys.rs`, which starts the service, a KMIP object
server that keeps ONTAP's attributes, and the cluster's external key manager on it; everything
comes through environment variables (NETAPP_TEST_*). Uses only `KeyManagerAuthKey` and
`KeyManagerKeys`, as an
automation script would. Prints the created key's id on its last line; exits 0 when every step
passed.
"""

import os

from netapp_ontap import HostConnection, NetAppRestError, config
from netapp_ontap.resources import KeyManagerAuthKey, KeyManagerKeys, SecurityKeyManager


def env(name):
    value = os.environ.get(f"NETAPP_TEST_{name}")
    assert value, f"NETAPP_TEST_{name} is not set"
    return value


def main():
    config.CONNECTION = HostConnection(
        env("HOST"),
        port=int(env("PORT")),
        username=env("USER"),
        password=env("PASSWORD"),
        verify=False,
    )
    key_manager = env("KEY_MANAGER")

    key = KeyManagerAuthKey(key_manager, key_tag="from-netapp-ontap", passphrase="AuthenticationKey_01")
    key.post(hydrate=True)
    assert len(key.key_id) == 80, key.key_id
    print(f"ok   created {key.key_id}", flush=True)

    listed = list(KeyManagerAuthKey.get_collection(key_manager, fields="key_id,key_tag"))
    assert [k.key_id for k in listed] == [key.key_id], listed
    assert listed[0].key_tag == "from-netapp-ontap", listed[0]
    print("ok   listed", flush=True)

    again = KeyManagerAuthKey(key_manager, key_id=key.key_id)
    again.get()
    assert again.key_tag == "from-netapp-ontap", again
    assert not hasattr(again, "passphrase"), again
    print("ok   read without its passphrase", flush=True)

    try:
        KeyManagerAuthKey(key_manager, passphrase="too-short").post()
        raise AssertionError("a short passphrase was accepted")
    except NetAppRestError as err:
        error = err.response_body["error"]
        assert (err.status_code, error["code"], error["target"]) == (400, "262197", "passphrase"), error
    print("ok   a short passphrase is refused", flush=True)

    held = list(KeyManagerKeys.get_collection(key_manager, env("NODE"), fields="*"))
    assert [(k.key_id, k.key_type, k.key_store) for k in held] == [
        (key.key_id, "nse_ak", "external")
    ], held
    one = KeyManagerKeys(key_manager, env("NODE"), key_id=key.key_id)
    one.get()
    assert one.key_server and one.restored is True, one
    print("ok   held keys listed by key id", flush=True)

    restored = SecurityKeyManager(uuid=key_manager).restore(poll_interval=1, poll_timeout=30)
    assert restored.http_response.json()["state"] == "success", restored.http_response.text
    print("ok   restored through a job", flush=True)

    again.delete()
    assert list(KeyManagerAuthKey.get_collection(key_manager)) == []
    print("ok   deleted", flush=True)
    print(key.key_id, flush=True)


if __name__ == "__main__":
    main()
