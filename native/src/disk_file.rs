//! Files on disk as the sources and sinks of transfers (`Client::send_file`,
//! `Client::download_file`), for the `qpq` REPL and other native programs.
//!
//! Blocking `std::fs` calls are fine here: a transfer reads or writes one chunk (256 KiB) at a
//! time between network round trips, on the program's one thread.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use futures::future::{self, LocalBoxFuture};
use qpq_client::files::{FileSink, FileSource};

/// A file to upload.
pub struct DiskSource {
    file: RefCell<File>,
    size: u64,
}

impl DiskSource {
    /// Opens `path` for reading.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
        }
        Ok(DiskSource { file: RefCell::new(file), size: meta.len() })
    }
}

/// Reads up to `len` bytes at `offset` (fewer only at the end of the file).
fn read_at(file: &mut File, offset: u64, len: u32) -> Result<Vec<u8>, String> {
    file.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(len as usize);
    file.take(u64::from(len)).read_to_end(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

impl FileSource for DiskSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn read(&self, offset: u64, len: u32) -> LocalBoxFuture<'_, Result<Vec<u8>, String>> {
        Box::pin(future::ready(read_at(&mut self.file.borrow_mut(), offset, len)))
    }
}

/// Where a download goes: a file that may already hold the start of the download.
pub struct DiskSink {
    file: RefCell<File>,
}

impl DiskSink {
    /// Opens (or creates) `path` for a download; [`DiskSink::stored`] says how much it holds.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        Ok(DiskSink { file: RefCell::new(file) })
    }

    /// Bytes already in the file (where an interrupted download continues).
    pub fn stored(&self) -> std::io::Result<u64> {
        Ok(self.file.borrow().metadata()?.len())
    }
}

impl FileSink for DiskSink {
    /// Writes `data` at `offset`, dropping whatever followed (a chunk that failed its check
    /// is written again from its start).
    fn write(&self, offset: u64, data: Vec<u8>) -> LocalBoxFuture<'_, Result<(), String>> {
        let mut file = self.file.borrow_mut();
        let r = (|| {
            file.set_len(offset)?;
            file.seek(SeekFrom::Start(offset))?;
            file.write_all(&data)?;
            file.flush()
        })();
        Box::pin(future::ready(r.map_err(|e| e.to_string())))
    }

    fn read(&self, offset: u64, len: u32) -> LocalBoxFuture<'_, Result<Vec<u8>, String>> {
        Box::pin(future::ready(read_at(&mut self.file.borrow_mut(), offset, len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<T>(f: LocalBoxFuture<'_, T>) -> T {
        futures::executor::block_on(f)
    }

    #[test]
    fn a_sink_writes_reads_back_and_rewrites_from_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        let sink = DiskSink::open(&path).unwrap();
        assert_eq!(sink.stored().unwrap(), 0);
        block_on(sink.write(0, b"hello ".to_vec())).unwrap();
        block_on(sink.write(6, b"world".to_vec())).unwrap();
        assert_eq!(block_on(sink.read(3, 100)).unwrap(), b"lo world");
        block_on(sink.write(6, b"there".to_vec())).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello there");
        drop(sink);
        assert_eq!(DiskSink::open(&path).unwrap().stored().unwrap(), 11, "a reopened sink continues");
    }

    #[test]
    fn a_source_reads_chunks_and_refuses_directories() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.bin");
        std::fs::write(&path, b"0123456789").unwrap();
        let src = DiskSource::open(&path).unwrap();
        assert_eq!(src.size(), 10);
        assert_eq!(block_on(src.read(4, 4)).unwrap(), b"4567");
        assert_eq!(block_on(src.read(8, 4)).unwrap(), b"89", "short at the end");
        assert!(DiskSource::open(dir.path()).is_err());
    }
}
