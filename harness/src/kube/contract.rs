//! What the objects `pgdrill kube` writes rely on, in one place: the pgdrill image's layout and
//! user, and the two folders its pod's containers share with the `pod` target (which reads the
//! same paths on its side: change them together).

/// pgdrill in the image (also on the PATH as `/usr/local/bin/pgdrill`, which the server's
/// container hides).
pub(crate) const PGDRILL: &str = "/usr/lib/pgdrill/bin/pgdrill";

/// The image's repository; its tag is `<pgdrill's version>-pg<major>`.
pub(crate) const IMAGE_REPOSITORY: &str = "pgdrill/pgdrill";

/// The PostgreSQL major of the default image.
pub(crate) const IMAGE_MAJOR: u32 = 17;

/// The image's unprivileged user `postgres`: its uid and gid, as `ci/image/build` makes the image
/// (its labels `org.pgdrill.uid` and `org.pgdrill.gid`); `--uid` and `--gid` override them.
pub(crate) const IMAGE_UID: i64 = 100;
pub(crate) const IMAGE_GID: i64 = 102;

/// The server's socket folder, shared by both containers (in memory).
pub(crate) const RUN_DIR: &str = "/run/pgdrill";
/// The target's data, shared by both containers (on the node's disk).
pub(crate) const DATA_DIR: &str = "/var/lib/pgdrill/target";
/// A follower's state (its ledger, follow.prom and reports), on its claim, in pgdrill's
/// container.
pub(crate) const STATE_DIR: &str = "/var/lib/pgdrill/state";
/// The server's container runs `pgdrill pod-server`.
pub(crate) const POD_SERVER: &str = "pod-server";
/// The target `pgdrill run` drills on, beside the server's container.
pub(crate) const POD_TARGET: &str = "pod";

/// The folders of programs hidden from the server's container (an empty, read-only folder over
/// each): PostgreSQL starts programs through /bin/sh, which Debian links into /usr/bin.
pub(crate) const HIDDEN_PROGRAMS: [&str; 4] = ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"];

/// Where the scenarios' ConfigMap is mounted in pgdrill's container.
pub(crate) const SCENARIOS_DIR: &str = "/etc/pgdrill/scenarios";
/// Where the signing key's Secret is mounted, and the file in it.
pub(crate) const SIGNING_DIR: &str = "/etc/pgdrill/signing";
pub(crate) const SIGNING_FILE: &str = "key";
/// pgdrill's own scratch folder (downloads, its home): `TMPDIR` and `HOME`.
pub(crate) const WORK_DIR: &str = "/tmp";

/// The names of the two containers.
pub(crate) const SERVER_CONTAINER: &str = "postgres";
pub(crate) const DRILL_CONTAINER: &str = "pgdrill";

/// The variable an Indexed Job's controller sets in each of its pods' containers.
pub(crate) const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// The socket folder's size (in memory): a socket and its lock file.
pub(crate) const RUN_SIZE: &str = "16Mi";
/// The empty folder that hides programs.
pub(crate) const NO_PROGRAMS_SIZE: &str = "1Mi";

/// How long a pod told to stop has to tear the target down and write its reports.
pub(crate) const GRACE_SECONDS: i64 = 120;

/// The labels every object carries, and the annotation that lists the scenarios by index.
pub(crate) const LABEL_NAME: &str = "app.kubernetes.io/name";
pub(crate) const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
pub(crate) const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub(crate) const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
pub(crate) const SCENARIOS_ANNOTATION: &str = "pgdrill.dev/scenarios";
