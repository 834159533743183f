//! Working containers and `commit`: a lasting writable root over an image
//! (records in `berth_app::containers`, mounted by the launch), and new
//! images made of what a container or a `--writable` instance changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_app::containers::{Container, ContainerError, ContainerStore};
use berth_build::layer::{LayerBlob, LayerWriter};
use berth_build::oci::{self, LayerRef, NewImage};
use berth_image::{Digest, ImageName};
use berth_sandbox::instance::{self, InstanceState};

use crate::error::{Error, Result};
use crate::{Engine, Frontend, WorkDir};

/// The label a committed image records its parent in (manifest digest).
pub const LABEL_PARENT: &str = "org.berth.commit.parent";
/// Annotation of an index entry that lists a container's image only
/// because the container keeps it (it lost its names): `rm` drops it.
const KEPT: &str = "org.berth.kept-for-container";

/// What `commit` made.
#[derive(Debug, serde::Serialize)]
pub struct Committed {
    pub image: String,
    pub id: String,
    pub digest: Digest,
    /// The image it was made from.
    pub parent: Digest,
    /// The new layer of the root's changes (none for an instance on a
    /// read-only root committed for its data alone).
    pub layer: Option<Digest>,
    pub files: u64,
    pub bytes: u64,
    pub removed: u64,
    /// The layer of the app's private data (`--with-data`).
    pub data_layer: Option<Digest>,
    /// Files and bytes in it.
    pub data_files: u64,
    pub data_bytes: u64,
    /// Entries no layer can hold (sockets, devices), left out.
    pub skipped: Vec<String>,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl From<ContainerError> for Error {
    fn from(e: ContainerError) -> Error {
        match e {
            ContainerError::Io { context, source } => Error::Io { context, source },
            ContainerError::Invalid(m) => Error::Invalid(m),
            other => Error::Refused(other.to_string()),
        }
    }
}

impl Engine {
    pub fn containers(&self) -> ContainerStore {
        ContainerStore::new(self.store.root())
    }

    /// `berth create --name NAME IMAGE`: a working container of the image
    /// (pulled if it is a registry reference the store lacks).
    pub fn create_container(
        &self,
        name: &str,
        image: &str,
        fe: &dyn Frontend,
    ) -> Result<Container> {
        if !berth_app::containers::valid_name(name) {
            return Err(Error::Invalid(format!(
                "{name:?} is not a container name: letters, digits, '_', '.' and '-', starting with a letter or digit, at most 64"
            )));
        }
        self.sweep_containers();
        let entry = self.image_or_pull(image, fe)?;
        Ok(self
            .containers()
            .create(name, image, &entry.digest.to_string(), now())?)
    }

    /// `berth rm NAME`: the container and everything its runs wrote.
    pub fn remove_container(&self, name: &str) -> Result<()> {
        self.sweep_containers();
        let gone = self.containers().remove(name)?;
        berth_image::fsutil::remove_tree(&gone)?;
        // Its image, listed again only for it, goes to gc with it.
        let held = self.container_images();
        self.store.update_index(|list| {
            list.retain(|d| {
                let kept = d
                    .annotations()
                    .as_ref()
                    .is_some_and(|a| a.contains_key(KEPT));
                !kept || Digest::from_oci(d.digest()).is_ok_and(|x| held.contains(&x))
            });
            Ok(())
        })?;
        Ok(())
    }

    /// Remove what a killed `create` or `rm` left (`gc` and every `create`
    /// and `rm` do): how many, and their bytes.
    pub fn sweep_containers(&self) -> (usize, u64) {
        let (mut n, mut bytes) = (0, 0);
        for p in self.containers().leftovers() {
            let size = berth_image::fsutil::tree_size(&p);
            if berth_image::fsutil::remove_tree(&p).is_ok() {
                n += 1;
                bytes += size;
            }
        }
        (n, bytes)
    }

    /// List again, unnamed, a working container's image that lost its
    /// last name (`rmi`, or the name moved to a commit or pull), so it
    /// stays visible in `berth images` and can be named by its ID.
    pub fn list_container_images(&self) {
        let held = self.container_images();
        if held.is_empty() {
            return;
        }
        let Ok(listed) = self.store.images() else {
            return;
        };
        for d in held {
            if listed.iter().any(|e| e.digest == d) {
                continue;
            }
            if let Ok(entry) = self.store.entry_by_digest(&d) {
                let mut desc = oci_spec::image::Descriptor::new(
                    oci_spec::image::MediaType::ImageManifest,
                    entry.size,
                    d.to_oci(),
                );
                desc.set_annotations(Some(
                    [(KEPT.to_owned(), "true".to_owned())].into_iter().collect(),
                ));
                let _ = self.store.update_index(|list| {
                    if !list.iter().any(|x| x.digest() == desc.digest()) {
                        list.push(desc);
                    }
                    Ok(())
                });
            }
        }
    }

    /// Image digests working containers use: gc roots.
    pub fn container_images(&self) -> Vec<Digest> {
        self.containers()
            .list()
            .iter()
            .filter_map(|c| Digest::parse(&c.digest).ok())
            .collect()
    }

    /// `berth commit WHAT NAME`: an image of `WHAT`'s image plus a layer
    /// of what its root changed (`WHAT` is a working container, or a
    /// running instance with a writable root), and with `with_data` a
    /// layer of the app's private home. A running instance is frozen
    /// while its changes are read, where its cgroup allows.
    pub fn commit(
        &self,
        what: &str,
        name: Option<&str>,
        with_data: bool,
        state_dir: &Path,
        fe: &dyn Frontend,
    ) -> Result<Committed> {
        let containers = self.containers();
        let running = instance::list(state_dir);
        let (root, parent, inst): (Option<PathBuf>, String, Option<&InstanceState>) =
            match containers.get(what) {
                Ok(_) if with_data => {
                    return Err(Error::Invalid(format!(
                        "--with-data: container {what}'s home is part of its root, so its commit carries it already"
                    )));
                }
                Ok(c) => (
                    Some(containers.root(&c.name).join("upper")),
                    c.digest.clone(),
                    running
                        .iter()
                        .find(|s| s.container.as_deref() == Some(&c.name)),
                ),
                Err(ContainerError::NotFound(_) | ContainerError::Invalid(_)) => {
                    let found: Vec<&InstanceState> = running
                        .iter()
                        .filter(|s| s.id.starts_with(what) || s.name == what)
                        .collect();
                    let s = match found.as_slice() {
                        [one] => *one,
                        [] => {
                            return Err(Error::Invalid(format!(
                                "no working container or running instance {what:?} (see `berth containers` and `berth ps`)"
                            )));
                        }
                        _ => {
                            return Err(Error::Invalid(format!(
                                "{what:?} names {} instances; give more of the instance ID",
                                found.len()
                            )));
                        }
                    };
                    // A read-only root changed nothing; its data may still be
                    // worth keeping.
                    if s.upper.is_none() && !with_data {
                        return Err(Error::Refused(format!(
                            "instance {} runs on a read-only root, so it changed nothing to commit; run it with `--writable` or in a container (`berth create`), or commit its private data with `--with-data`",
                            s.id
                        )));
                    }
                    (
                        s.upper.as_ref().map(|u| PathBuf::from(u).join("upper")),
                        s.image_digest.clone(),
                        Some(s),
                    )
                }
                Err(e) => return Err(e.into()),
            };
        // A container's own name is the natural name of its image; an
        // instance has none worth keeping.
        let name = match (name, containers.get(what).is_ok()) {
            (Some(n), _) => ImageName::parse(n)?,
            (None, true) => ImageName::parse(what).map_err(|_| {
                Error::Invalid(format!(
                    "container name {what:?} is no image name (those are lowercase); name the image: `berth commit {what} NAME[:TAG]`"
                ))
            })?,
            (None, false) => {
                return Err(Error::Invalid(format!(
                    "name the new image: `berth commit {what} NAME[:TAG]` (only a working container's name is taken by default)"
                )));
            }
        };
        let parent = Digest::parse(&parent)?;
        let orig = self
            .store
            .load_image(&self.store.entry_by_digest(&parent)?)?;
        let work = WorkDir::new(self, "commit-")?;
        // The home path the sandbox gives this user: where `--with-data`
        // puts the app's data, and what a root's changes may hold.
        let home = berth_launch::host::user_and_home().1;
        let (uid, gid) = (
            rustix::process::getuid().as_raw(),
            rustix::process::getgid().as_raw(),
        );
        let as_root = (uid != 0).then_some((uid, gid));
        let carries_home = with_data
            || root
                .as_deref()
                .is_some_and(|u| berth_build::commit::has_dir(u, &home));
        // The app's private home for `--with-data` (its ID from the image).
        let data = if with_data {
            let app = orig
                .labels()
                .get(berth_app::metadata::LABEL_ID)
                .cloned()
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "--with-data: {what} is no app (its image has no org.berth.app.id), so it has no private data"
                    ))
                })?;
            // Run as the installed app, not as its image (whose home was
            // empty or part of its writable root).
            if inst.is_some_and(|s| s.app != app) {
                return Err(Error::Invalid(format!(
                    "--with-data: {what} runs the image, not the installed app {app}, so its home is no private data (a --writable run's home is committed with its root)"
                )));
            }
            Some(self.data_dir(&app))
        } else {
            None
        };
        // Frozen while read, so the layer is one moment of the root.
        // A paused instance stays as the user left it. Otherwise it is
        // recorded as paused by this commit first, so that if the commit
        // is killed meanwhile, the next listing (`berth ps`, any run or
        // commit) thaws it.
        let freeze = |s: &InstanceState| -> std::result::Result<InstanceState, String> {
            let cg = s.cgroup.as_ref().ok_or("no cgroup freezer")?;
            let mut paused = s.clone();
            paused.paused = true;
            let me = std::process::id() as i32;
            let ticks = berth_sandbox::instance::start_ticks(me)
                .ok_or("cannot read this process's start time")?;
            paused.frozen_by = Some((me, ticks));
            paused
                .save(state_dir)
                .map_err(|e| format!("cannot record the freeze: {e}"))?;
            cg.set_frozen(true).map_err(|e| {
                paused.paused = false;
                paused.frozen_by = None;
                let _ = paused.save(state_dir);
                format!("the freezer failed: {e}")
            })?;
            Ok(paused)
        };
        let mut frozen = None;
        if let Some(s) = inst.filter(|s| !s.paused) {
            match freeze(s) {
                Ok(p) => frozen = Some(p),
                Err(why) => fe.warn(&format!(
                    "warning: the instance keeps running while its changes are read ({why}): a file it writes meanwhile may be taken half-written"
                )),
            }
        }
        // Both layers are read while the instance is frozen, each walked
        // by directory fds (a running app may swap a file for a symlink
        // to a host file: crates/build/src/commit.rs).
        let layers = (|| -> Result<_> {
            let (changes, stats) = match &root {
                Some(upper) => {
                    let mut w = LayerWriter::create(&work.0.join("changes"))?;
                    let stats = berth_build::commit::upper_layer(upper, "", as_root, &mut w)?;
                    (Some(w.finish()?), stats)
                }
                None => (None, Default::default()),
            };
            let data_blob = match &data {
                Some(dir) => {
                    let mut w = LayerWriter::create(&work.0.join("data"))?;
                    let stats = if dir.is_dir() {
                        berth_build::commit::upper_layer(dir, &home, as_root, &mut w)?
                    } else {
                        Default::default()
                    };
                    Some((w.finish()?, stats))
                }
                None => None,
            };
            Ok((changes, stats, data_blob))
        })();
        // Thawed unless the user paused or resumed it meanwhile (then the
        // freeze is theirs, or gone).
        if let Some(ours) = frozen
            && let Some(cg) = &ours.cgroup
            && let Ok(mut now) = instance::find(state_dir, &ours.id)
            && now.frozen_by == ours.frozen_by
        {
            let _ = cg.set_frozen(false);
            now.paused = false;
            now.frozen_by = None;
            let _ = now.save(state_dir);
        }
        let (blob, stats, data_blob) = layers?;
        let layer = blob.as_ref().map(|b| b.digest.clone());
        let mut blobs: Vec<LayerBlob> = blob.into_iter().collect();
        let mut skipped = stats.skipped;
        let (data_layer, data_files, data_bytes) = match data_blob {
            Some((b, s)) => {
                let d = b.digest.clone();
                blobs.push(b);
                skipped.extend(s.skipped);
                (Some(d), s.files, s.bytes)
            }
            None => (None, 0, 0),
        };
        let mut config = orig.config.config().clone().unwrap_or_default();
        let mut labels = config.labels().clone().unwrap_or_default();
        labels.insert(LABEL_PARENT.to_owned(), parent.to_string());
        if carries_home {
            labels.insert(berth_app::containers::LABEL_HOME.to_owned(), home);
        }
        config.set_labels(Some(labels));
        let mut layers = LayerRef::of_image(&orig)?;
        layers.extend(blobs.iter().map(LayerRef::from_blob));
        // The runtime it was built on stays its base (thin bundles, rebase).
        let annotations: BTreeMap<String, String> = orig
            .manifest
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k == oci::BASE_NAME || k == oci::BASE_DIGEST)
            .collect();
        let img = NewImage {
            name: name.to_string(),
            config,
            layers,
            annotations,
            created: now(),
        };
        let layout = work.0.join("layout");
        oci::write_layout(&layout, std::slice::from_ref(&img), &blobs)?;
        let res = self.import_path(&layout, None, fe)?;
        let first = res
            .images
            .into_iter()
            .next()
            .ok_or_else(|| Error::Invalid("the commit produced no image".into()))?;
        Ok(Committed {
            image: name.to_string(),
            id: first.id,
            digest: first.digest,
            parent,
            layer,
            files: stats.files,
            bytes: stats.bytes,
            removed: stats.removed,
            data_layer,
            data_files,
            data_bytes,
            skipped,
        })
    }
}
