#!/usr/bin/env python3
"""NetApp's own Python client, unmodified, with ontap-keymgr's encrypted volumes.

Run by `crates/ontap-keymgr/tests/http/volumes.rs`, which starts the service, a KMIP object
server and an SVM's external key manager on it (NETAPP_TEST_*). Creates an encrypted volume
(the library polls the job), reads it, and deletes it (polling again). Prints the volume's key
id on its last line.
"""

import os

from netapp_ontap import HostConnection, config
from netapp_ontap.resources import Volume


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
    volume = Volume(
        name="vol_netapp",
        svm={"name": env("SVM")},
        size=100 * 1024 * 1024,
        encryption={"enabled": True},
    )
    volume.post(hydrate=True, poll_interval=1, poll_timeout=30)
    print(f"ok   created {volume.uuid}", flush=True)
    found = Volume.find(name="vol_netapp", fields="encryption,size,svm")
    assert found.encryption.enabled is True, found
    assert found.encryption.state == "encrypted", found
    assert len(found.encryption.key_id) == 80, found
    print("ok   read, encrypted", flush=True)
    found.delete(poll_interval=1, poll_timeout=30)
    assert list(Volume.get_collection()) == []
    print("ok   deleted", flush=True)
    print(found.encryption.key_id, flush=True)


if __name__ == "__main__":
    main()
