//! The read model answers from memory, never stale after a write of its own.

use super::*;
use crate::domain::ids::Id;
use crate::store::secrets::SecretBox;
use crate::store::sqlite::SqliteStore;

fn svm(uuid: &str, name: &str) -> Svm {
    Svm {
        uuid: Id::from_stored(uuid.to_owned()),
        name: name.into(),
    }
}

fn names(svms: &[Svm]) -> Vec<&str> {
    svms.iter().map(|s| s.name.as_str()).collect()
}

fn model() -> (Arc<SqliteStore>, ReadModel) {
    let store =
        Arc::new(SqliteStore::open_in_memory(SecretBox::generate().expect("key")).expect("store"));
    let model = ReadModel::new(store.clone());
    (store, model)
}

#[tokio::test]
async fn reads_come_from_memory_until_a_write_through_the_model() {
    let (store, model) = model();
    model.insert_svm(svm("u1", "vs1")).await.expect("insert");
    assert_eq!(names(&model.list_svms().await.expect("list")), ["vs1"]);

    // Written behind the model's back: the model still answers what it holds...
    store.insert_svm(svm("u2", "vs2")).await.expect("insert");
    assert_eq!(names(&model.list_svms().await.expect("list")), ["vs1"]);

    // ...and a write through it makes it read the store again.
    model.insert_svm(svm("u3", "vs3")).await.expect("insert");
    assert_eq!(
        names(&model.list_svms().await.expect("list")),
        ["vs1", "vs2", "vs3"]
    );
}

#[tokio::test]
async fn a_failed_write_also_forgets() {
    let (store, model) = model();
    model.insert_svm(svm("u1", "vs1")).await.expect("insert");
    assert_eq!(model.list_svms().await.expect("list").len(), 1);
    store.insert_svm(svm("u2", "vs2")).await.expect("insert");
    model
        .insert_svm(svm("u3", "vs1"))
        .await
        .expect_err("the name is taken");
    assert_eq!(model.list_svms().await.expect("list").len(), 2);
}

#[tokio::test]
async fn a_load_that_raced_a_write_is_not_kept() {
    let (store, model) = model();
    store.insert_svm(svm("u1", "vs1")).await.expect("insert");
    // The load reads the old list, then a write commits before the load is stored.
    let raced = model
        .cached(
            |l| &mut l.svms,
            || async {
                let old = store.list_svms().await;
                model.insert_svm(svm("u2", "vs2")).await.expect("insert");
                old.map(Arc::new)
            },
        )
        .await
        .expect("load");
    assert_eq!(
        names(&raced),
        ["vs1"],
        "the racing read answers what it read"
    );
    assert_eq!(
        names(&model.list_svms().await.expect("list")),
        ["vs1", "vs2"],
        "but the next read does not see the stale list"
    );
}

#[tokio::test]
async fn key_managers_are_found_by_uuid_and_updated_through_the_model() {
    let (_, model) = model();
    let uuid: KeyManagerId = Id::from_stored("km".to_owned());
    let onboard = |passphrase: &str| KeyManager {
        uuid: uuid.clone(),
        svm: None,
        kind: crate::domain::model::KeyManagerKind::Onboard {
            passphrase: crate::domain::model::Secret::new(passphrase),
        },
    };
    assert_eq!(model.get_key_manager(&uuid).await.expect("get"), None);
    model
        .insert_key_manager(onboard("first passphrase"))
        .await
        .expect("insert");
    assert_eq!(
        model.get_key_manager(&uuid).await.expect("get"),
        Some(onboard("first passphrase"))
    );
    model
        .update_key_manager(onboard("second passphrase"))
        .await
        .expect("update");
    assert_eq!(
        model.get_key_manager(&uuid).await.expect("get"),
        Some(onboard("second passphrase"))
    );
    assert_eq!(model.list_key_managers().await.expect("list").len(), 1);
}

/// The response cache serves an answer again only while this version is unchanged: it moves
/// with every write through the model, failed ones too, and with nothing else.
#[tokio::test]
async fn the_objects_version_moves_after_each_write_and_only_then() {
    let (_store, model) = model();
    let before = model.objects_version().expect("a version");
    model.list_svms().await.expect("list");
    model.list_key_managers().await.expect("list");
    assert_eq!(model.objects_version(), Some(before), "reads move nothing");
    model.insert_svm(svm("u1", "vs1")).await.expect("insert");
    let after_write = model.objects_version().expect("a version");
    assert_ne!(after_write, before);
    model
        .insert_svm(svm("u2", "vs1"))
        .await
        .expect_err("the name is taken");
    assert_ne!(model.objects_version(), Some(after_write));
}
