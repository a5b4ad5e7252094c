//! The model library on a real SQLite file: import in place, list, info, remove, and
//! bad input that must leave nothing behind.

use std::path::Path;

use gateway_core::store::Store;
use llama_manager::library::{Library, LibraryError, Source};
use llama_manager::testing::gguf_writer::{TinyLlama, tiny_llama};

fn library(dir: &Path) -> Library {
    let store = Store::connect(&gateway_core::store::testing::location(dir)).unwrap();
    Library::new(store, dir.join("models"))
}

fn count_rows(lib: &Library) -> (i64, i64) {
    lib.store()
        .with(|c| {
            Ok((
                c.query_row("SELECT COUNT(*) FROM models", [], |r| r.get(0))?,
                c.query_row("SELECT COUNT(*) FROM model_files", [], |r| r.get(0))?,
            ))
        })
        .unwrap()
}

#[test]
fn import_list_info_remove_keeps_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let lib = library(dir.path());
    let src = dir.path().join("elsewhere/my-model.Q4_K_M.gguf");
    std::fs::create_dir_all(src.parent().unwrap()).unwrap();
    let bytes = tiny_llama("my tiny", 7);
    std::fs::write(&src, &bytes).unwrap();

    let m = lib.import(&src).unwrap();
    assert_eq!(m.name, "my-model.Q4_K_M");
    assert_eq!(m.source, Source::Import);
    assert_eq!(m.path, std::fs::canonicalize(&src).unwrap());
    assert_eq!(m.size, bytes.len() as u64);
    assert_eq!(m.summary.architecture, "llama");
    assert_eq!(m.summary.parameters, TinyLlama::default().parameters());
    assert_eq!(m.summary.layers, 2);
    assert_eq!(m.summary.context_length, 512);
    assert!(m.summary.has_chat_template);
    // The header says F32, which beats the file name.
    assert_eq!(m.quantization.as_deref(), Some("F32"));
    assert_eq!(m.files.len(), 1);

    // Importing the same file again is refused and changes nothing.
    let err = lib.import(&src).unwrap_err();
    assert!(err.to_string().contains("already in the library"), "{err}");
    assert_eq!(count_rows(&lib), (1, 1));

    // The same contents under another name get a distinct entry; names stay unique.
    let copy = dir.path().join("my-model.Q4_K_M.gguf");
    std::fs::write(&copy, &bytes).unwrap();
    let m2 = lib.import(&copy).unwrap();
    assert_eq!(m2.name, "my-model.Q4_K_M-2");

    let list = lib.list().unwrap();
    assert_eq!(
        list.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![m.id, m2.id]
    );
    assert_eq!(lib.get(&m.id.to_string()).unwrap(), m);
    assert_eq!(lib.get("my-model.Q4_K_M-2").unwrap().id, m2.id);
    assert!(matches!(lib.get("999"), Err(LibraryError::NotFound(_))));

    // Removing an imported model leaves its file in place.
    let (gone, deleted) = lib.remove(&m.id.to_string()).unwrap();
    assert_eq!(gone.id, m.id);
    assert!(deleted.is_empty());
    assert!(src.exists());
    assert_eq!(count_rows(&lib), (1, 1));
    assert!(lib.remove(&m.id.to_string()).is_err());
}

#[test]
fn bad_imports_are_clear_and_register_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lib = library(dir.path());
    let d = dir.path();

    std::fs::write(
        d.join("notes.gguf"),
        b"these are not the weights you are looking for",
    )
    .unwrap();
    let err = lib.import(&d.join("notes.gguf")).unwrap_err();
    assert!(err.to_string().contains("not a GGUF file"), "{err}");

    let model = tiny_llama("t", 1);
    std::fs::write(d.join("cut.gguf"), &model[..10_000]).unwrap();
    let err = lib.import(&d.join("cut.gguf")).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");

    let err = lib.import(&d.join("missing.gguf")).unwrap_err();
    assert!(err.to_string().contains("missing.gguf"), "{err}");

    let err = lib.import(d).unwrap_err();
    assert!(err.to_string().contains("not a file"), "{err}");

    std::fs::write(d.join("mmproj-x-F16.gguf"), &model).unwrap();
    let err = lib.import(&d.join("mmproj-x-F16.gguf")).unwrap_err();
    assert!(err.to_string().contains("mmproj"), "{err}");

    // Shards: the first one brings the rest; a missing shard is named.
    std::fs::write(d.join("s-Q8_0-00001-of-00002.gguf"), &model).unwrap();
    let err = lib
        .import(&d.join("s-Q8_0-00001-of-00002.gguf"))
        .unwrap_err();
    assert!(err.to_string().contains("shard 2 of 2 is missing"), "{err}");
    std::fs::write(d.join("s-Q8_0-00002-of-00002.gguf"), tiny_llama("t", 2)).unwrap();
    let err = lib
        .import(&d.join("s-Q8_0-00002-of-00002.gguf"))
        .unwrap_err();
    assert!(err.to_string().contains("import the first shard"), "{err}");
    assert_eq!(count_rows(&lib), (0, 0));

    let m = lib.import(&d.join("s-Q8_0-00001-of-00002.gguf")).unwrap();
    assert_eq!(m.name, "s-Q8_0");
    assert_eq!(m.files.len(), 2);
    assert_eq!(m.size, 2 * model.len() as u64);
    // Parameters of both shards count.
    assert_eq!(m.summary.parameters, 2 * TinyLlama::default().parameters());
    assert_eq!(count_rows(&lib), (1, 2));
}

#[cfg(unix)]
#[test]
fn models_in_the_hugging_face_cache_are_listed_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let lib = library(dir.path());
    // The layout huggingface-cli / hf-hub / llama.cpp's -hf write: blobs named by hash,
    // snapshots/REV/FILE as symlinks into them.
    let repo = dir.path().join("hub/models--TheOrg--Tiny-GGUF");
    let blob = repo.join("blobs/3f1e2d");
    std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
    std::fs::write(&blob, tiny_llama("hf tiny", 3)).unwrap();
    let snap = repo.join("snapshots/0123abcd");
    std::fs::create_dir_all(&snap).unwrap();
    std::os::unix::fs::symlink("../../blobs/3f1e2d", snap.join("tiny.Q8_0.gguf")).unwrap();
    std::fs::write(repo.join("snapshots/0123abcd/README.md"), "not a model").unwrap();
    std::fs::write(repo.join("snapshots/0123abcd/broken.gguf"), "not a gguf").unwrap();

    let added = lib.sync_hf_cache(&dir.path().join("hub")).unwrap();
    assert_eq!(added.len(), 1, "{added:?}");
    let m = &added[0];
    assert_eq!(m.repo.as_deref(), Some("TheOrg/Tiny-GGUF"));
    assert_eq!(m.revision.as_deref(), Some("0123abcd"));
    assert_eq!(
        m.path,
        snap.join("tiny.Q8_0.gguf"),
        "the snapshot path, not a copy"
    );
    assert_eq!(m.summary.architecture, "llama");
    assert!(
        lib.sync_hf_cache(&dir.path().join("hub"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(count_rows(&lib).0, 1);
    // Removing it leaves the shared files alone, and it does not come back.
    let (_, deleted) = lib.remove(&m.id.to_string()).unwrap();
    assert!(deleted.is_empty());
    assert!(blob.exists());
    assert!(
        lib.sync_hf_cache(&dir.path().join("hub"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(count_rows(&lib).0, 0);
    // A missing cache is no error.
    assert!(
        lib.sync_hf_cache(&dir.path().join("nope"))
            .unwrap()
            .is_empty()
    );
}
