use std::fs::OpenOptions;
use std::io::Write;

use super::*;

const ALL: Limit = Limit { events: u64::MAX, bytes: u64::MAX };

fn batch(events: &[&str]) -> Batch {
    Batch {
        events: events.join("\n").into_bytes(),
        count: events.len() as u32,
        request: "r".into(),
        received_at_us: 1,
        key: None,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn numbers(frames: &[(Frame, u64)]) -> Vec<i64> {
    frames.iter().flat_map(|(f, _)| f.events().map(|(n, _)| n).collect::<Vec<_>>()).collect()
}

#[test]
fn appended_events_are_numbered_durable_and_read_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = Wal::open(dir.path(), -1).unwrap().start().unwrap();
    let rt = rt();
    let a = rt.block_on(log.append(batch(&["{\"a\":1}", "{\"a\":2}"]))).unwrap();
    let b = rt.block_on(log.append(batch(&["{\"a\":3}"]))).unwrap();
    assert_eq!((a.first, a.last, b.first, b.last), (0, 1, 2, 2));
    assert_eq!(log.durable(), 2);
    assert!(log.pending_bytes() > 0);
    let mut r = Reader::new(dir.path());
    let frames = r.read(-1, log.durable(), ALL).unwrap();
    assert_eq!(numbers(&frames), vec![0, 1, 2]);
    // the cursor goes on from where it stopped
    rt.block_on(log.append(batch(&["{\"a\":4}"]))).unwrap();
    assert_eq!(numbers(&r.read(2, log.durable(), ALL).unwrap()), vec![3]);
    // and seeks when asked for another place
    assert_eq!(numbers(&r.read(1, log.durable(), ALL).unwrap()), vec![2, 3]);
    // never past what is durable
    assert_eq!(numbers(&r.read(-1, 1, ALL).unwrap()), vec![0, 1]);
}

#[test]
fn a_second_process_cannot_open_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let _log = Wal::open(dir.path(), -1).unwrap().start().unwrap();
    let e = Wal::open(dir.path(), -1).err().expect("locked");
    assert!(e.contains("another Ingesta process"), "{e}");
}

#[test]
fn reopening_cuts_a_torn_tail_and_numbering_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Wal::open(dir.path(), -1).unwrap().start().unwrap();
        rt().block_on(log.append(batch(&["{\"a\":1}", "{\"a\":2}"]))).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(50)); // the writer thread lets go of the lock
    let (_, seg) = segments(dir.path()).unwrap().pop().unwrap();
    let clean = std::fs::metadata(&seg).unwrap().len();
    OpenOptions::new().append(true).open(&seg).unwrap().write_all(&[9, 0, 0, 0, 1, 2]).unwrap();
    let wal = Wal::open(dir.path(), -1).unwrap();
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), clean, "the torn frame is cut");
    assert_eq!(wal.last(), 1);
    let log = wal.start().unwrap();
    let c = rt().block_on(log.append(batch(&["{\"a\":3}"]))).unwrap();
    assert_eq!(c.first, 2);
    assert_eq!(numbers(&Reader::new(dir.path()).read(-1, 2, ALL).unwrap()), vec![0, 1, 2]);
}

#[test]
fn segments_roll_and_are_deleted_once_the_table_holds_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = Wal::open(dir.path(), -1).unwrap().with_segment_bytes(1).start().unwrap();
    let rt = rt();
    for i in 0..4 {
        rt.block_on(log.append(batch(&[&format!("{{\"a\":{i}}}")]))).unwrap();
    }
    assert_eq!(segments(dir.path()).unwrap().len(), 4);
    let mut r = Reader::new(dir.path());
    assert_eq!(numbers(&r.read(-1, 3, ALL).unwrap()), vec![0, 1, 2, 3], "reads across segments");
    assert_eq!(numbers(&r.read(-1, 3, Limit { events: 2, bytes: u64::MAX }).unwrap()), vec![0, 1]);
    release(dir.path(), 1, None).unwrap();
    let left: Vec<i64> = segments(dir.path()).unwrap().into_iter().map(|(f, _)| f).collect();
    assert_eq!(left, vec![2, 3]);
    release(dir.path(), 3, None).unwrap();
    assert_eq!(segments(dir.path()).unwrap().len(), 1, "the last segment stays");
}

#[test]
fn an_archive_keeps_held_segments_until_they_are_old() {
    let dir = tempfile::tempdir().unwrap();
    let log = Wal::open(dir.path(), -1).unwrap().with_segment_bytes(1).start().unwrap();
    let rt = rt();
    for i in 0..3 {
        rt.block_on(log.append(batch(&[&format!("{{\"a\":{i}}}")]))).unwrap();
    }
    release(dir.path(), 2, Some(std::time::Duration::from_secs(3600))).unwrap();
    assert_eq!(first_event(dir.path()).unwrap(), Some(0), "kept for the archive");
    release(dir.path(), 2, Some(std::time::Duration::ZERO)).unwrap();
    assert_eq!(first_event(dir.path()).unwrap(), Some(2), "past the retention: deleted");
}

#[test]
fn numbering_goes_on_from_the_table_when_the_log_was_emptied() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), 41).unwrap();
    assert_eq!(wal.last(), 41);
    let log = wal.start().unwrap();
    assert_eq!(rt().block_on(log.append(batch(&["{}"]))).unwrap().first, 42);
}

#[test]
fn damage_before_the_last_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Wal::open(dir.path(), -1).unwrap().with_segment_bytes(1).start().unwrap();
        let rt = rt();
        rt.block_on(log.append(batch(&["{}"]))).unwrap();
        rt.block_on(log.append(batch(&["{}"]))).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    let (_, first) = segments(dir.path()).unwrap().remove(0);
    OpenOptions::new().append(true).open(&first).unwrap().write_all(&[1, 2, 3]).unwrap();
    let e = Wal::open(dir.path(), -1).err().expect("damaged");
    assert!(e.contains("damaged"), "{e}");
}

fn keyed(events: &[&str], key: &str) -> Batch {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
    Batch { key: Some(key.into()), received_at_us: now, ..batch(events) }
}

/// Opens the log again once the previous writer let go of it.
fn reopen(dir: &std::path::Path, committed: i64) -> Wal {
    for _ in 0..100 {
        if let Ok(w) = Wal::open(dir, committed) {
            return w;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("the log stays locked");
}

#[test]
fn a_resent_key_gets_the_first_answer_and_nothing_is_written_twice() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let log = Wal::open(dir.path(), -1).unwrap().start().unwrap();
    let a = rt.block_on(log.append(keyed(&["{\"a\":1}", "{\"a\":2}"], "k1"))).unwrap();
    let again = rt.block_on(log.append(keyed(&["{\"a\":1}", "{\"a\":2}"], "k1"))).unwrap();
    assert!(!a.replayed && again.replayed);
    assert_eq!((again.first, again.last, again.count, &again.request), (a.first, a.last, a.count, &a.request));
    let other = rt.block_on(log.append(keyed(&["{\"a\":3}"], "k2"))).unwrap();
    assert_eq!(other.first, 2, "another key is written");
    assert_eq!(numbers(&Reader::new(dir.path()).read(-1, log.durable(), ALL).unwrap()), vec![0, 1, 2]);
    drop(log);

    // after a restart, from the segment
    let log = reopen(dir.path(), -1).start().unwrap();
    assert!(rt.block_on(log.append(keyed(&["{\"a\":1}"], "k1"))).unwrap().replayed);
    drop(log);
}

#[test]
fn keys_outlive_the_segments_the_table_took() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let log = Wal::open(dir.path(), -1).unwrap().with_segment_bytes(1).start().unwrap();
    rt.block_on(log.append(keyed(&["{\"a\":1}"], "k1"))).unwrap();
    rt.block_on(log.append(keyed(&["{\"a\":2}"], "k2"))).unwrap();
    rt.block_on(log.append(batch(&["{\"a\":3}"]))).unwrap();
    // the table holds events 0 and 1: their segments go, their keys stay
    release(dir.path(), 1, None).unwrap();
    assert_eq!(first_event(dir.path()).unwrap(), Some(2));
    assert!(dir.path().join("KEYS").exists());
    drop(log);
    let log = reopen(dir.path(), 2).start().unwrap();
    let k1 = rt.block_on(log.append(keyed(&["{\"a\":1}"], "k1"))).unwrap();
    assert!(k1.replayed && k1.first == 0, "{k1:?}");
    assert!(rt.block_on(log.append(keyed(&["{\"a\":2}"], "k2"))).unwrap().replayed);
    assert!(!rt.block_on(log.append(keyed(&["{\"a\":9}"], "k3"))).unwrap().replayed);
}
