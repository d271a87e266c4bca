package cgroupfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// ErrNotFound means no cgroup with that id or path exists (any more).
var ErrNotFound = errors.New("cgroupfs: cgroup not found")

// Hierarchy resolves cgroup ids to paths and back in one mounted hierarchy.
// Paths are relative to the mount point and start with "/" ("/" is the
// root). It caches what it learns and walks the tree again on Refresh.
// It is safe for concurrent use.
type Hierarchy struct {
	mount string

	mu     sync.Mutex
	byID   map[uint64]string
	byPath map[string]uint64
	// children lists the cached children of each cached path.
	children map[string][]string
	// removed holds the cgroups the last Refresh found gone, by id.
	removed map[uint64]string
}

// NewHierarchy returns a resolver for the hierarchy mounted at mount.
func NewHierarchy(mount string) *Hierarchy {
	return &Hierarchy{mount: filepath.Clean(mount), byID: map[uint64]string{}, byPath: map[string]uint64{},
		children: map[string][]string{}}
}

// Mount returns the mount point.
func (h *Hierarchy) Mount() string { return h.mount }

// Dir returns the directory of the cgroup at path.
func (h *Hierarchy) Dir(p string) string {
	if p == "/" || p == "" {
		return h.mount
	}
	return h.mount + path.Clean("/"+p)
}

// Refresh walks the whole hierarchy and replaces the cache with what exists
// now, so cgroups that were removed are forgotten; until the next Refresh,
// Removed still names them.
func (h *Hierarchy) Refresh() error {
	byID := make(map[uint64]string, len(h.byID)+16)
	byPath := make(map[string]uint64, len(h.byPath)+16)
	err := filepath.WalkDir(h.mount, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != h.mount && errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fs.SkipDir
			}
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("no inode for %s", p)
		}
		rel := "/" + strings.TrimPrefix(strings.TrimPrefix(p, h.mount), "/")
		byID[st.Ino] = rel
		byPath[rel] = st.Ino
		return nil
	})
	if err != nil {
		return fmt.Errorf("walk cgroup hierarchy %s: %w", h.mount, err)
	}
	children := make(map[string][]string, len(h.children)+16)
	for p := range byPath {
		if p != "/" {
			parent := path.Dir(p)
			children[parent] = append(children[parent], p)
		}
	}
	h.mu.Lock()
	removed := map[uint64]string{}
	for id, p := range h.byID {
		if _, ok := byID[id]; !ok {
			removed[id] = p
		}
	}
	h.byID, h.byPath, h.children, h.removed = byID, byPath, children, removed
	h.mu.Unlock()
	return nil
}

// Removed returns the path a cgroup had when the last Refresh found it
// removed: what its tasks did before it went (events counted by id) can
// still be reported under its name.
func (h *Hierarchy) Removed(id uint64) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.removed[id]
	return p, ok
}

// Children returns the cached paths of the children of the cgroup at p,
// in no particular order; nil when it has none. The slice is shared: do
// not modify it.
func (h *Hierarchy) Children(p string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.children[p]
}

// Path returns the cached path of the cgroup with id.
func (h *Hierarchy) Path(id uint64) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.byID[id]
	return p, ok
}

// Known reports which of ids are in the cache.
func (h *Hierarchy) Known(id uint64) bool {
	_, ok := h.Path(id)
	return ok
}

// ID returns the id of the cgroup at path, from the cache or the filesystem.
func (h *Hierarchy) ID(p string) (uint64, error) {
	p = path.Clean("/" + p)
	h.mu.Lock()
	id, ok := h.byPath[p]
	h.mu.Unlock()
	if ok {
		return id, nil
	}
	var st syscall.Stat_t
	if err := syscall.Stat(h.Dir(p), &st); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return 0, fmt.Errorf("%s: %w", p, ErrNotFound)
		}
		return 0, fmt.Errorf("stat cgroup %s: %w", p, err)
	}
	h.mu.Lock()
	if _, ok := h.byPath[p]; !ok && p != "/" {
		parent := path.Dir(p)
		// A copy: Children's callers may hold the old slice.
		h.children[parent] = append(h.children[parent][:len(h.children[parent]):len(h.children[parent])], p)
	}
	h.byID[st.Ino] = p
	h.byPath[p] = st.Ino
	h.mu.Unlock()
	return st.Ino, nil
}

// Exists reports whether a cgroup directory exists at path right now.
func (h *Hierarchy) Exists(p string) bool {
	st, err := os.Stat(h.Dir(p))
	return err == nil && st.IsDir()
}

// Nearest returns the path of p itself when it exists in this hierarchy,
// otherwise of its nearest existing ancestor ("/" at worst).
func (h *Hierarchy) Nearest(p string) string {
	p = path.Clean("/" + p)
	for p != "/" {
		if _, err := h.ID(p); err == nil {
			return p
		}
		p = path.Dir(p)
	}
	return "/"
}

// IDs returns the ids of every cached cgroup.
func (h *Hierarchy) IDs() []uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]uint64, 0, len(h.byID))
	for id := range h.byID {
		ids = append(ids, id)
	}
	return ids
}

// Len returns the number of cached cgroups.
func (h *Hierarchy) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.byID)
}
