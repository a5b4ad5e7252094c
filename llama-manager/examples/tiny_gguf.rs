//! Write the tiny llama-architecture test model (a real GGUF llama-server loads) to the
//! path given: `tiny_gguf OUT.gguf [NAME]`. Used by the SDK tests.

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next() else {
        eprintln!("usage: tiny_gguf OUT.gguf [NAME]");
        std::process::exit(2);
    };
    let name = args.next().unwrap_or_else(|| "tiny".into());
    let bytes = llama_manager::testing::gguf_writer::tiny_llama(&name, 42);
    if let Err(e) = std::fs::write(&out, bytes) {
        eprintln!("error: {out}: {e}");
        std::process::exit(1);
    }
}
