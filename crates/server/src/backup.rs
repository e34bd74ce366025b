//! `counterbook-server backup --data DIR --to FILE`: an online backup of a data directory's
//! database, safe to take while the server runs and writes.
//!
//! The copy itself is `store::copy_database_online` (SQLite's online backup API: one
//! consistent snapshot, never blocking the server's writer). This module checks the paths
//! first, so mistakes get a clear message instead of an SQLite code, and writes the copy
//! beside the target under a temporary name, checks it, fsyncs it and renames it into place:
//! `FILE` is either the previous backup or a complete, checked new one, never half written.
//! Restoring is copying `FILE` as `counterbook.sqlite3` into an empty data directory.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use counterbook_firestore_wire::Timestamp;
use counterbook_server::store::{copy_database_online, StoreError, DATABASE_FILE_NAME};

/// Why a backup was not made. Each message names the path at fault.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// `--data` does not name a directory.
    #[error("the data directory {0} does not exist")]
    DataDirectoryMissing(PathBuf),
    /// The directory exists but holds no database: not a data directory, or never served.
    #[error("{0} has no {DATABASE_FILE_NAME}: is it the server's --data directory?")]
    DatabaseMissing(PathBuf),
    /// `--to` names a directory; a backup is one file.
    #[error("the backup target {0} is a directory; name the file to write")]
    TargetIsDirectory(PathBuf),
    /// `--to` is the live database itself.
    #[error("the backup target {0} is the live database; choose another file")]
    TargetIsTheDatabase(PathBuf),
    /// The directory that should hold the backup does not exist.
    #[error("the backup target's directory {0} does not exist")]
    TargetDirectoryMissing(PathBuf),
    /// The backup file (or its temporary sibling) cannot be created, written or renamed.
    #[error("cannot write the backup {path}")]
    TargetNotWritable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed while copying.
    #[error("copying the database failed")]
    Copy(#[source] StoreError),
    /// The copy does not pass `PRAGMA integrity_check` (the live database may be damaged).
    #[error("the copy failed SQLite's integrity check ({0}); the target was not written")]
    CopyIsCorrupt(String),
}

/// What a finished backup holds.
#[derive(Clone, Debug)]
pub struct BackupReport {
    pub target: PathBuf,
    pub documents: u64,
    pub last_commit_time: Option<Timestamp>,
    pub bytes: u64,
}

/// Backs up `data_directory`'s database into the file `target` (replacing it atomically).
pub fn backup_data_directory(
    data_directory: &Path,
    target: &Path,
) -> Result<BackupReport, BackupError> {
    if !data_directory.is_dir() {
        return Err(BackupError::DataDirectoryMissing(data_directory.to_owned()));
    }
    let database = data_directory.join(DATABASE_FILE_NAME);
    if !database.is_file() {
        return Err(BackupError::DatabaseMissing(data_directory.to_owned()));
    }
    if target.is_dir() {
        return Err(BackupError::TargetIsDirectory(target.to_owned()));
    }
    let target_directory = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    if !target_directory.is_dir() {
        return Err(BackupError::TargetDirectoryMissing(target_directory));
    }
    let file_name = target
        .file_name()
        .ok_or_else(|| BackupError::TargetIsDirectory(target.to_owned()))?;
    let live = database.canonicalize().ok();
    let target_canonical = target_directory
        .canonicalize()
        .ok()
        .map(|directory| directory.join(file_name));
    if live.is_some() && live == target_canonical {
        return Err(BackupError::TargetIsTheDatabase(target.to_owned()));
    }

    let mut temporary_name = file_name.to_owned();
    temporary_name.push(format!(".partial-{}", std::process::id()));
    let temporary = target_directory.join(temporary_name);
    // create_new: never write into a file someone else is writing; also the earliest, clearest
    // place to learn that the directory is not writable.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temporary)
        .map_err(|source| BackupError::TargetNotWritable {
            path: target.to_owned(),
            source,
        })?;
    let outcome = copy_check_and_rename(&database, &temporary, target, &target_directory);
    if outcome.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    outcome
}

fn copy_check_and_rename(
    database: &Path,
    temporary: &Path,
    target: &Path,
    target_directory: &Path,
) -> Result<BackupReport, BackupError> {
    let copy = copy_database_online(database, temporary).map_err(BackupError::Copy)?;
    if copy.integrity_check != "ok" {
        return Err(BackupError::CopyIsCorrupt(copy.integrity_check));
    }
    let not_writable = |path: &Path| {
        let path = path.to_owned();
        move |source| BackupError::TargetNotWritable { path, source }
    };
    // The copy's bytes reach the disk before its name does, and the name before we report
    // success: a crash right after this command leaves the new backup or the old one.
    let file = File::open(temporary).map_err(not_writable(temporary))?;
    file.sync_all().map_err(not_writable(temporary))?;
    let bytes = file.metadata().map_err(not_writable(temporary))?.len();
    drop(file);
    std::fs::rename(temporary, target).map_err(not_writable(target))?;
    File::open(target_directory)
        .and_then(|directory| directory.sync_all())
        .map_err(not_writable(target_directory))?;
    Ok(BackupReport {
        target: target.to_owned(),
        documents: copy.documents,
        last_commit_time: copy.last_commit_time,
        bytes,
    })
}
