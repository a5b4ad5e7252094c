//! The GGUF parser against the writer's tiny llama model and hand-made edge cases.

use llama_manager::gguf::{self, GgufError, ModelSummary, Value, ValueType};
use llama_manager::testing::gguf_writer::{GgufWriter, TINY_VOCAB, TinyLlama, tiny_llama};

#[test]
fn tiny_llama_header_and_summary() {
    let spec = TinyLlama::default();
    let bytes = spec.build();
    assert!(
        bytes.len() > 400_000 && bytes.len() < 600_000,
        "{}",
        bytes.len()
    );
    let g = gguf::parse(&bytes).unwrap();
    assert_eq!(g.version, 3);
    assert_eq!(g.tensors.len(), 3 + 9 * 2);
    assert_eq!(g.data_offset % 32, 0);
    let s = ModelSummary::from_gguf(&g, bytes.len() as u64).unwrap();
    assert_eq!(s.architecture, "llama");
    assert_eq!(s.name.as_deref(), Some("tiny-llama"));
    assert_eq!(s.parameters, spec.parameters());
    assert_eq!(s.parameters, 115_392);
    assert_eq!(s.layers, 2);
    assert_eq!(s.context_length, 512);
    assert_eq!(s.embedding_length, 64);
    assert_eq!(s.feed_forward_length, 128);
    assert_eq!(s.head_count, 4);
    assert_eq!(s.head_count_kv, 4);
    assert_eq!(s.key_length, 16);
    assert_eq!(s.vocab_size, TINY_VOCAB);
    assert_eq!(s.file_type.as_deref(), Some("F32"));
    assert!(s.has_chat_template);
    assert_eq!(s.split_count, 1);
    // Tensor sizes come from the offsets: F32 weights are 4 bytes per parameter.
    assert_eq!(s.weight_bytes(), 4 * spec.parameters());
    assert_eq!(s.non_layer_bytes, 4 * (2 * 64 * 259 + 64));
    let no_template = TinyLlama {
        chat_template: false,
        ..TinyLlama::default()
    }
    .build();
    let g = gguf::parse(&no_template).unwrap();
    assert!(
        !ModelSummary::from_gguf(&g, no_template.len() as u64)
            .unwrap()
            .has_chat_template
    );
}

fn every_type() -> Vec<(String, Value)> {
    let arr = |elem, items| Value::Array { elem, items };
    vec![
        ("t.u8".into(), Value::U8(200)),
        ("t.i8".into(), Value::I8(-100)),
        ("t.u16".into(), Value::U16(60_000)),
        ("t.i16".into(), Value::I16(-30_000)),
        ("t.u32".into(), Value::U32(4_000_000_000)),
        ("t.i32".into(), Value::I32(-2_000_000_000)),
        ("t.f32".into(), Value::F32(1.5)),
        ("t.bool_t".into(), Value::Bool(true)),
        ("t.bool_f".into(), Value::Bool(false)),
        ("t.string".into(), Value::String("héllo ✓".into())),
        ("t.empty_string".into(), Value::String(String::new())),
        ("t.u64".into(), Value::U64(u64::MAX)),
        ("t.i64".into(), Value::I64(i64::MIN)),
        ("t.f64".into(), Value::F64(-2.25e300)),
        (
            "t.arr_u8".into(),
            arr(ValueType::U8, vec![Value::U8(1), Value::U8(2)]),
        ),
        (
            "t.arr_i16".into(),
            arr(ValueType::I16, vec![Value::I16(-1), Value::I16(7)]),
        ),
        (
            "t.arr_f64".into(),
            arr(ValueType::F64, vec![Value::F64(0.5)]),
        ),
        (
            "t.arr_bool".into(),
            arr(ValueType::Bool, vec![Value::Bool(true), Value::Bool(false)]),
        ),
        (
            "t.arr_str".into(),
            arr(
                ValueType::String,
                vec![Value::String("a".into()), Value::String(String::new())],
            ),
        ),
        ("t.arr_empty".into(), arr(ValueType::U32, vec![])),
        (
            "t.arr_nested".into(),
            arr(
                ValueType::Array,
                vec![
                    arr(ValueType::I64, vec![Value::I64(-5)]),
                    arr(ValueType::I64, vec![]),
                ],
            ),
        ),
    ]
}

#[test]
fn every_value_type_round_trips() {
    let mut w = GgufWriter::new();
    for (k, v) in every_type() {
        w = w.kv(&k, v);
    }
    let bytes = w.to_bytes();
    let g = gguf::parse(&bytes).unwrap();
    assert_eq!(g.metadata, every_type());
    assert!(g.tensors.is_empty());
    // Every type tag 0..=12 was written at least once.
    let mut seen: Vec<u32> = g
        .metadata
        .iter()
        .map(|(_, v)| v.value_type() as u32)
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, (0..=12).collect::<Vec<u32>>());
    // A model file needs an architecture.
    assert!(ModelSummary::from_gguf(&g, bytes.len() as u64).is_err());
}

#[test]
fn version_2_is_read() {
    let mut w = GgufWriter::new().kv("general.architecture", Value::String("llama".into()));
    w.version = 2;
    let g = gguf::parse(&w.to_bytes()).unwrap();
    assert_eq!(g.version, 2);
}

#[test]
fn big_endian_bad_magic_and_old_versions_are_rejected() {
    let mut be = b"GGUF".to_vec();
    be.extend_from_slice(&3u32.to_be_bytes());
    be.extend_from_slice(&0u64.to_be_bytes());
    be.extend_from_slice(&0u64.to_be_bytes());
    assert!(matches!(gguf::parse(&be), Err(GgufError::BigEndian)));
    let msg = gguf::parse(&be).unwrap_err().to_string();
    assert!(msg.contains("big-endian"), "{msg}");

    assert!(matches!(
        gguf::parse(b"GGML\x03\0\0\0rest"),
        Err(GgufError::NotGguf)
    ));
    assert!(matches!(
        gguf::parse(b"{\"json\": true}"),
        Err(GgufError::NotGguf)
    ));
    let mut v1 = GgufWriter::new();
    v1.version = 1;
    assert!(matches!(
        gguf::parse(&v1.to_bytes()),
        Err(GgufError::UnsupportedVersion(1))
    ));
}

#[test]
fn every_prefix_is_truncated_never_a_panic() {
    let mut w = GgufWriter::new();
    for (k, v) in every_type() {
        w = w.kv(&k, v);
    }
    let w = w.tensor_f32("x.weight", &[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let bytes = w.to_bytes();
    let full = gguf::parse(&bytes).unwrap();
    for n in 0..full.header_len as usize {
        match gguf::parse(&bytes[..n]) {
            Err(GgufError::Truncated { at }) => assert!(at > n as u64 || n < 4, "{n} {at}"),
            other => panic!("prefix {n}: {other:?}"),
        }
    }
}

fn header_with_raw_kv(type_tag: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    b.push(b'k');
    b.extend_from_slice(&type_tag.to_le_bytes());
    b.extend_from_slice(payload);
    b
}

#[test]
fn corrupt_values_are_errors_not_allocations() {
    assert!(matches!(
        gguf::parse(&header_with_raw_kv(13, &[0; 8])),
        Err(GgufError::Invalid { .. })
    ));
    assert!(matches!(
        gguf::parse(&header_with_raw_kv(7, &[2])),
        Err(GgufError::Invalid { .. })
    ));
    // A string claiming u64::MAX bytes.
    assert!(gguf::parse(&header_with_raw_kv(8, &u64::MAX.to_le_bytes())).is_err());
    // An array claiming 2^60 elements.
    let mut arr = 0u32.to_le_bytes().to_vec();
    arr.extend_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(matches!(
        gguf::parse(&header_with_raw_kv(9, &arr)),
        Err(GgufError::Truncated { .. })
    ));
    // Absurd counts.
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&u64::MAX.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    assert!(matches!(gguf::parse(&b), Err(GgufError::Invalid { .. })));
    // A tensor with 9 dimensions.
    let w = GgufWriter::new().tensor_raw("t", &[1; 9], 0, vec![0; 4]);
    assert!(matches!(
        gguf::parse(&w.to_bytes()),
        Err(GgufError::Invalid { .. })
    ));
}

#[test]
fn read_path_grows_past_one_mebibyte_and_reports_truncation() {
    let dir = tempfile::tempdir().unwrap();
    // A 2 MB header: a big string array.
    let big: Vec<Value> = (0..200_000)
        .map(|i| Value::String(format!("token-{i}")))
        .collect();
    let w = GgufWriter::new()
        .kv("general.architecture", Value::String("llama".into()))
        .kv(
            "tokenizer.ggml.tokens",
            Value::Array {
                elem: ValueType::String,
                items: big,
            },
        )
        .kv("general.alignment", Value::U32(64));
    let bytes = w.to_bytes();
    assert!(bytes.len() > 2 << 20);
    let p = dir.path().join("big.gguf");
    std::fs::write(&p, &bytes).unwrap();
    let (g, len) = gguf::read_path(&p, 64 << 20).unwrap();
    assert_eq!(len, bytes.len() as u64);
    assert_eq!(g.data_offset % 64, 0);
    assert!(matches!(
        gguf::read_path(&p, 1 << 20),
        Err(GgufError::TooLarge(_))
    ));
    let model = tiny_llama("t", 3);
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &model[..5000]).unwrap();
    let err = gguf::read_path(&cut, 64 << 20).unwrap_err();
    assert!(matches!(err, GgufError::Truncated { .. }), "{err}");
    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        gguf::read_path(&empty, 64 << 20),
        Err(GgufError::NotGguf)
    ));
    let missing = gguf::read_path(&dir.path().join("nope.gguf"), 1 << 20).unwrap_err();
    assert!(missing.to_string().contains("nope.gguf"), "{missing}");
}

#[test]
fn missing_tensor_data_is_truncation() {
    let model = tiny_llama("t", 4);
    let g = gguf::parse(&model).unwrap();
    assert!(g.check_complete(model.len() as u64).is_ok());
    assert!(matches!(
        g.check_complete(model.len() as u64 - 1),
        Err(GgufError::Truncated { .. })
    ));
    assert!(g.check_complete(g.data_offset + 10).is_err());
}
