//! The landing folder: files dropped under a folder, matched by a glob, each
//! read once. A file is identified by its path, size and modification time; a
//! file whose size or time changes while we look is still being written and is
//! left for the next scan.

mod remote;
mod scan;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use ingesta_config::{Compression, Format};
use ingesta_core::FileKey;

use crate::SourceError;
use crate::decode::csv::CsvFormat;
use crate::decode::{self, Chunk, ReadCtx, Stopped};

/// A file found in the landing folder, with how to read it.
#[derive(Debug, Clone)]
pub struct FileInfo {
    pub key: FileKey,
    pub path: PathBuf,
    pub format: Format,
    pub compression: Compression,
    /// Why the file cannot be read at all (its format cannot be told): it is
    /// recorded in quarantine instead of read.
    pub problem: Option<String>,
    /// For a file in an object store: its listing entry (`path` is unused then).
    pub object: Option<object_store::ObjectMeta>,
    /// When the file appeared in the folder as it is now (milliseconds since
    /// the epoch). A local file: the latest of its modification time, its
    /// status-change time (which a rename, a write or `cp -p` sets to now and
    /// no tool sets back) and those of the folders it is in, the landing
    /// folder included (a folder moved in keeps its files' own times). An
    /// object: its `last_modified`, set by the store.
    pub appeared_ms: i64,
}

/// A configured landing source.
#[derive(Debug, Clone)]
pub struct Landing {
    pub name: String,
    /// The local folder (when `path` is not a URL).
    pub root: PathBuf,
    /// The object-store prefix (when `path` is a URL).
    remote: Option<remote::Remote>,
    pub config: ingesta_config::Landing,
    glob: globset::GlobMatcher,
}

impl Landing {
    pub fn new(name: &str, config: &ingesta_config::Landing) -> Result<Self, SourceError> {
        let glob = globset::GlobBuilder::new(&config.glob)
            .literal_separator(true)
            .build()
            .map_err(|e| SourceError::Config(format!("source `{name}`: invalid glob `{}`: {e}", config.glob)))?
            .compile_matcher();
        let remote = if config.path.contains("://") {
            let options = config.storage.iter().map(|(k, v)| (k.clone(), v.expose().to_string())).collect();
            let remote = remote::Remote::new(&config.path, options);
            Some(remote.map_err(|e| SourceError::Config(format!("source `{name}`: {e}")))?)
        } else {
            None
        };
        Ok(Self { name: name.to_string(), root: PathBuf::from(&config.path), remote, config: config.clone(), glob })
    }

    /// The files ready to read, in path order, and the ones still being
    /// written. With `taken_before`, files that appeared at or before it are
    /// passed over as they are listed (every such file was taken already):
    /// a folder of a million old files is not held in memory.
    pub fn scan(&self, taken_before: Option<i64>) -> std::io::Result<Scan> {
        scan::scan(self, taken_before)
    }

    /// Reads one file from where an earlier run left it, handing chunks to `emit`.
    /// An error here means the file could not be opened at all: nothing of it was
    /// read, and it is worth trying again later.
    pub fn read(
        &self,
        file: &FileInfo,
        ctx: &ReadCtx,
        emit: &mut dyn FnMut(Chunk) -> Result<(), Stopped>,
    ) -> Result<Result<(), Stopped>, std::io::Error> {
        if file.format == Format::Parquet {
            return Ok(match (&self.remote, &file.object) {
                (Some(r), Some(meta)) => decode::read_parquet(r.fetch(meta)?, ctx, emit),
                _ => decode::read_parquet(File::open(&file.path)?, ctx, emit),
            });
        }
        let mut reader = self.open_text(file)?;
        let c = &self.config;
        Ok(match file.format {
            Format::Csv => {
                let fmt =
                    CsvFormat { header: c.csv.header, delimiter: c.csv.delimiter as u8, quote: c.csv.quote as u8 };
                decode::read_csv(&mut reader, &fmt, ctx, emit)
            }
            Format::Avro => decode::read_avro(&mut reader, ctx, emit),
            Format::Json => decode::read_json_doc(&mut reader, c.explode.as_deref(), ctx, emit),
            Format::Ndjson | Format::Auto | Format::Parquet => decode::read_ndjson(&mut reader, ctx, emit),
        })
    }

    /// The file's bytes, decompressed, buffered.
    pub(crate) fn open_text(&self, file: &FileInfo) -> std::io::Result<Box<dyn BufRead>> {
        let raw: Box<dyn BufRead + Send> = match (&self.remote, &file.object) {
            (Some(r), Some(meta)) => r.open(meta),
            _ => Box::new(BufReader::with_capacity(1 << 20, File::open(&file.path)?)),
        };
        Ok(match file.compression {
            Compression::Gzip => Box::new(BufReader::with_capacity(1 << 20, flate2::read::MultiGzDecoder::new(raw))),
            Compression::Zstd => {
                Box::new(BufReader::with_capacity(1 << 20, zstd::stream::read::Decoder::with_buffer(raw)?))
            }
            Compression::None | Compression::Auto => raw,
        })
    }

    /// A Parquet file's schema, from its footer.
    pub(crate) fn parquet_schema(&self, file: &FileInfo) -> Result<arrow_schema::SchemaRef, String> {
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder as B;
        let schema = match (&self.remote, &file.object) {
            (Some(r), Some(meta)) => B::try_new(r.fetch(meta).map_err(|e| e.to_string())?).map(|b| b.schema().clone()),
            _ => B::try_new(File::open(&file.path).map_err(|e| e.to_string())?).map(|b| b.schema().clone()),
        };
        schema.map_err(|e| e.to_string())
    }

    /// Format and compression of a file from its name, where the config says `auto`.
    pub fn detect(&self, rel: &str) -> Result<(Format, Compression), String> {
        let lower = rel.to_ascii_lowercase();
        let (stem, compression) = match self.config.compression {
            Compression::Auto => {
                if let Some(s) = lower.strip_suffix(".gz") {
                    (s, Compression::Gzip)
                } else if let Some(s) = lower.strip_suffix(".zst").or_else(|| lower.strip_suffix(".zstd")) {
                    (s, Compression::Zstd)
                } else {
                    (lower.as_str(), Compression::None)
                }
            }
            other => (lower.as_str(), other),
        };
        let format = match self.config.format {
            Format::Auto => match stem.rsplit_once('.').map(|(_, ext)| ext) {
                Some("ndjson" | "jsonl") => Format::Ndjson,
                Some("csv" | "tsv" | "txt") => Format::Csv,
                Some("parquet") => Format::Parquet,
                Some("avro") => Format::Avro,
                Some("json") => Format::Json,
                _ => {
                    return Err(format!(
                        "cannot tell the format of `{rel}` from its name (expected .ndjson, .jsonl, .csv, .tsv, .parquet, .avro, .json, optionally .gz/.zst); set `format:` on source `{}`",
                        self.name
                    ));
                }
            },
            f => f,
        };
        if format == Format::Parquet && compression != Compression::None {
            return Err(format!(
                "`{rel}`: Parquet files carry their own compression; an outer .gz/.zst is not supported"
            ));
        }
        Ok((format, compression))
    }
}

/// What a scan found.
#[derive(Debug, Default)]
pub struct Scan {
    pub ready: Vec<FileInfo>,
    /// Files whose size or time changed during the scan: still being written.
    pub unsettled: Vec<String>,
    /// Entries that could not be looked at (path, why): tried again next scan.
    pub unreadable: Vec<(String, String)>,
}
