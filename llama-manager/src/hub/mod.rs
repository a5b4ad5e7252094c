//! The model hub: file-name conventions (`files`).

pub mod files;
