package recorder

import "golang.org/x/sys/unix"

type unixStatfs = unix.Statfs_t

func statfs(dir string, sf *unixStatfs) (free, total uint64, err error) {
	if err := unix.Statfs(dir, sf); err != nil {
		return 0, 0, err
	}
	return sf.Bavail * uint64(sf.Bsize), sf.Blocks * uint64(sf.Bsize), nil
}
