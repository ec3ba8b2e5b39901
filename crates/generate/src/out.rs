//! Buffered output files that count their bytes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::GenerateError;

pub fn io(path: &Path, source: std::io::Error) -> GenerateError {
    GenerateError::Io { path: path.display().to_string(), source }
}

pub struct Out {
    w: BufWriter<File>,
    pub bytes: u64,
    path: std::path::PathBuf,
}

impl Out {
    pub fn create(path: &Path) -> Result<Self, GenerateError> {
        let f = File::create(path).map_err(|e| io(path, e))?;
        Ok(Self { w: BufWriter::with_capacity(1 << 20, f), bytes: 0, path: path.to_path_buf() })
    }

    pub fn line(&mut self, text: &str) -> Result<(), GenerateError> {
        self.w.write_all(text.as_bytes()).and_then(|_| self.w.write_all(b"\n")).map_err(|e| io(&self.path, e))?;
        self.bytes += text.len() as u64 + 1;
        Ok(())
    }

    pub fn finish(mut self) -> Result<u64, GenerateError> {
        self.w.flush().map_err(|e| io(&self.path, e))?;
        Ok(self.bytes)
    }
}
