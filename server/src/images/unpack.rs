//! Unpacking one layer (a tar archive, maybe gzipped) into a directory in overlayfs' form, so
//! that a container's root file system is the layers stacked as `lowerdir`s: the OCI whiteout
//! `.wh.NAME` (NAME deleted from the layers below) becomes a 0/0 character device NAME, and
//! `.wh..wh..opq` (the directory hides what the layers below hold in it) the directory's
//! `trusted.overlay.opaque` attribute. Owners, modes, times and extended attributes are kept,
//! which needs root, as the containers do.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
}

/// Unpacks the layer in `blob` into `target`, by way of `target.partial` so that an interrupted
/// unpack never leaves a `target` that looks complete.
pub fn unpack_layer(blob: &Path, compression: Compression, target: &Path) -> io::Result<()> {
    let partial = target.with_extension("partial");
    match fs::remove_dir_all(&partial) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    fs::create_dir_all(&partial)?;
    let file = BufReader::new(File::open(blob)?);
    let reader: Box<dyn Read> = match compression {
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(file)),
        Compression::None => Box::new(file),
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(true);
    archive.set_overwrite(true);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        match whiteout_of(&path)? {
            Some(Whiteout::Opaque(dir)) => {
                let dir = partial.join(dir);
                fs::create_dir_all(&dir)?;
                set_opaque(&dir)?;
            }
            Some(Whiteout::Deleted(file)) => {
                let file = partial.join(file);
                if let Some(parent) = file.parent() {
                    fs::create_dir_all(parent)?;
                }
                make_whiteout(&file)?;
            }
            None => {
                if !entry.unpack_in(&partial)? {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("the entry {} points outside the layer", path.display()),
                    ));
                }
            }
        }
    }
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::rename(&partial, target)
}

#[derive(Debug, PartialEq, Eq)]
enum Whiteout {
    /// The directory (relative to the layer) is opaque.
    Opaque(PathBuf),
    /// The file (relative to the layer) is deleted.
    Deleted(PathBuf),
}

/// The whiteout an entry's path stands for, if it is one; its path must stay inside the layer.
fn whiteout_of(path: &Path) -> io::Result<Option<Whiteout>> {
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
        return Ok(None);
    };
    let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) else {
        return Ok(None);
    };
    let mut parent = PathBuf::new();
    for component in path.parent().into_iter().flat_map(Path::components) {
        match component {
            Component::Normal(part) => parent.push(part),
            Component::CurDir => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the whiteout {} points outside the layer", path.display()),
                ))
            }
        }
    }
    Ok(Some(if name == OPAQUE_WHITEOUT {
        Whiteout::Opaque(parent)
    } else {
        Whiteout::Deleted(parent.join(hidden))
    }))
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)
}

fn make_whiteout(path: &Path) -> io::Result<()> {
    let path = c_path(path)?;
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    if unsafe { libc::mknod(path.as_ptr(), libc::S_IFCHR, 0) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set_opaque(dir: &Path) -> io::Result<()> {
    let dir = c_path(dir)?;
    let name = c"trusted.overlay.opaque";
    // SAFETY: both strings are NUL-terminated and the value is one byte long, as passed.
    let set = unsafe { libc::setxattr(dir.as_ptr(), name.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
    if set == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteouts_name_what_they_hide() {
        assert_eq!(whiteout_of(Path::new("etc/passwd")).unwrap(), None);
        assert_eq!(
            whiteout_of(Path::new("./etc/.wh.motd")).unwrap(),
            Some(Whiteout::Deleted(PathBuf::from("etc/motd")))
        );
        assert_eq!(
            whiteout_of(Path::new("var/cache/.wh..wh..opq")).unwrap(),
            Some(Whiteout::Opaque(PathBuf::from("var/cache")))
        );
        assert!(whiteout_of(Path::new("../etc/.wh.passwd")).is_err());
    }
}
