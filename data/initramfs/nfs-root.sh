# Drover initramfs: boot mode `nfs` (POSIX sh on busybox; sourced by /init, which provides
# RUN, say, fail and report). Mounts the root /newroot from:
#   DROVER_NFS_ROOT, else nfsroot=SERVER:/…/images/<sha256>/root[,opts]
#       the OS image, read-only over NFSv4 (lower)
#   DROVER_NFS_RW, else drover.nfs.rw=SERVER:/…/devices/<id>
#       the device's own export, read-write; its layer.ext4 is loop-mounted on $RUN/rw and holds
#       upper/ and work/ for overlayfs
# The DROVER_NFS_* values come from the boot config, whose request also made the controller
# export both paths to this device's address; the kernel command line is the fallback.
# overlayfs refuses an NFS directory as its upper dir (no RENAME_WHITEOUT, no trusted.* xattrs:
# "upper fs missing required features"), hence the ext4 file. Without layer.ext4 the upper
# layer is a tmpfs, as in ramroot, and changes are lost at reboot.
# Modules (with their dependencies): nfsv4 (nfs, sunrpc, lockd, grace, fscache, netfs,
# dns_resolver), overlay, loop, ext4 (jbd2, mbcache, crc16) and crc32c_generic, which ext4 asks
# the crypto API for by the alias crypto-crc32c (no modules.alias in our initramfs).
# busybox mount hands text options (plus addr=) to the kernel, which mounts NFSv4 by itself:
# no mount.nfs helper, rpcbind, rpc.statd or idmapd is needed.

NFSROOT='' NFSRW='' NFSVERS='' NFSOPTS='' NFS_LAYER=''
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    nfsroot=*) NFSROOT=${arg#*=} ;;
    drover.nfs.rw=*) NFSRW=${arg#*=} ;;
  esac
done
[ -n "${DROVER_NFS_ROOT:-}" ] && NFSROOT=$DROVER_NFS_ROOT
[ -n "${DROVER_NFS_RW:-}" ] && NFSRW=$DROVER_NFS_RW
NFS_SRC=${NFSROOT%%,*}
# nfsroot=SERVER:/path,opt,…: keep its options except version and transport, chosen below.
if [ "$NFS_SRC" != "$NFSROOT" ]; then
  for o in $(echo "${NFSROOT#*,}" | tr ',' ' '); do
    case "$o" in vers=* | nfsvers=* | tcp | udp | proto=* | v[234]*) ;; *) NFSOPTS="$NFSOPTS,$o" ;; esac
  done
fi

# nfs_mount SOURCE DIR OPTIONS: the newest NFSv4 minor version the server speaks; then that one.
nfs_mount() {
  for v in ${NFSVERS:-4.2 4.1 4.0}; do
    if mount -t nfs4 -o "$3,vers=$v,proto=tcp,hard$NFSOPTS" "$1" "$2" 2>/dev/null; then NFSVERS=$v; return 0; fi
  done
  return 1
}

mount_nfs_root() {
  [ -n "$NFS_SRC" ] && [ -n "$NFSRW" ] || fail "boot mode nfs needs nfsroot= and drover.nfs.rw= on the kernel command line"
  for m in nfsv4 overlay loop crc32c_generic ext4; do modprobe -q "$m" 2>/dev/null; done
  grep -qw nfs4 /proc/filesystems || fail "the kernel has no NFSv4 client (nfs, nfsv4, sunrpc missing from the initramfs?)"
  mkdir -p $RUN/lower $RUN/layer $RUN/rw /newroot
  n=0
  # The image never changes under its sha256: long attribute caching, no close-to-open checks.
  until nfs_mount "$NFS_SRC" $RUN/lower "ro,nocto,actimeo=600"; do
    n=$((n + 1))
    [ "$n" -ge 10 ] && fail "cannot mount the image root $NFS_SRC over NFS (server down, or not exported to this address?)"
    say "NFS mount of $NFS_SRC failed; retrying in 3s"
    sleep 3
  done
  nfs_mount "$NFSRW" $RUN/layer rw || fail "cannot mount the device layer $NFSRW over NFS (not exported read-write to this address?)"
  if [ -f $RUN/layer/layer.ext4 ]; then
    mount -t ext4 -o loop,noatime $RUN/layer/layer.ext4 $RUN/rw ||
      fail "cannot mount $NFSRW/layer.ext4 (loop, ext4, crc32c_generic in the initramfs? is it mounted by another device?)"
    NFS_LAYER=persistent
  else
    say "WARNING: $NFSRW has no layer.ext4: changes are kept in RAM only and lost at reboot"
    mount -t tmpfs -o "size=${DROVER_TMPFS_SIZE:-50%},mode=0755" tmpfs $RUN/rw || fail "cannot mount the tmpfs upper layer"
    NFS_LAYER=tmpfs
  fi
  mkdir -p $RUN/rw/upper $RUN/rw/work || fail "the device layer is not writable"
  mount -t overlay overlay -o "lowerdir=$RUN/lower,upperdir=$RUN/rw/upper,workdir=$RUN/rw/work" /newroot ||
    fail "cannot mount overlayfs over the NFS image root"
  say "root: $NFS_SRC (ro, NFSv$NFSVERS) + $NFSRW ($NFS_LAYER layer) as overlayfs"
  report rootfs-nfs ok "NFSv$NFSVERS, $NFS_LAYER layer" "\"nfsVersion\":\"$NFSVERS\",\"layer\":\"$NFS_LAYER\""
}
