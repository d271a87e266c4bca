package kube

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Container runtimes, as Ref.Runtime names them.
const (
	RuntimeContainerd = "containerd"
	RuntimeCRIO       = "cri-o"
	RuntimeDocker     = "docker"
)

// Ref is what a cgroup path says of the pod and container it belongs to.
type Ref struct {
	// PodUID is the pod's UID in its canonical dashed form, or, for a
	// static pod, the 32-hex-digit hash the kubelet uses as its UID (the
	// mirror pod's kubernetes.io/config.mirror annotation).
	PodUID string
	// ContainerID is the runtime's container id (64 lowercase hex digits),
	// "" for the pod-level cgroup itself.
	ContainerID string
	// Runtime is "containerd", "cri-o" or "docker", from the prefix of the
	// container's cgroup; "" when it has none (a bare id: containerd or
	// docker with the cgroupfs driver) or for the pod-level cgroup.
	Runtime string
	// QOSClass is "Guaranteed", "Burstable" or "BestEffort", from the
	// path's QoS level.
	QOSClass string
	// Conmon is set for CRI-O's monitor cgroup of a container
	// (crio-conmon-<id>); ContainerID is then the monitored container's.
	Conmon bool
}

// ParsePath reads the pod and container out of a cgroup path (of any
// hierarchy, relative to its root). ok is false when the path is not a
// pod's or a pod's container's.
//
// Recognised, with any prefix above the pod (a kubelet --cgroup-root, a
// kind node's own cgroup) and any cgroups below the container's, which
// belong to the container:
//
//	systemd driver:  …/kubepods[-<qos>]-pod<uid with _>.slice[/<c>.scope]
//	                 where <c> is cri-containerd-<id>, crio-<id>,
//	                 crio-conmon-<id> or docker-<id>; the slice's name may
//	                 carry a prefix (kubelet-kubepods-…) and be followed
//	                 by :cri-containerd:<id>, :crio:<id> or :docker:<id>
//	                 (runc's form when systemd does not manage the cgroup)
//	cgroupfs driver: …/kubepods[/<qos>]/pod<uid>[/<c>]
//	                 where <c> is <id>, crio-<id> or crio-conmon-<id>
//
// <qos> is burstable or besteffort, absent for Guaranteed pods. A pod UID
// is 8-4-4-4-12 lowercase hex digits (dashes, or underscores in a systemd
// slice), or 32 lowercase hex digits (a static pod's). A container id is
// exactly 64 lowercase hex digits, what containerd, CRI-O and docker all
// generate: shorter ids are not accepted, so that no other cgroup below a
// pod is taken for a container.
func ParsePath(path string) (Ref, bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, seg := range segs {
		if seg == "kubepods" {
			return parseCgroupfs(segs[i+1:])
		}
		if strings.Contains(seg, "-pod") && strings.Contains(seg, ".slice") {
			if ref, suffix, ok := systemdPodSlice(seg); ok {
				return parseSystemd(ref, suffix, segs[i+1:])
			}
		}
	}
	return Ref{}, false
}

// parseCgroupfs parses what follows a "kubepods" segment.
func parseCgroupfs(segs []string) (Ref, bool) {
	ref := Ref{QOSClass: string(corev1.PodQOSGuaranteed)}
	if len(segs) > 0 {
		switch segs[0] {
		case "burstable":
			ref.QOSClass, segs = string(corev1.PodQOSBurstable), segs[1:]
		case "besteffort":
			ref.QOSClass, segs = string(corev1.PodQOSBestEffort), segs[1:]
		}
	}
	if len(segs) == 0 {
		return Ref{}, false
	}
	id, ok := strings.CutPrefix(segs[0], "pod")
	if !ok {
		return Ref{}, false
	}
	if ref.PodUID, ok = podUID(id, '-'); !ok {
		return Ref{}, false
	}
	if len(segs) == 1 {
		return ref, true
	}
	c := segs[1]
	switch {
	case strings.HasPrefix(c, "crio-conmon-"):
		ref.ContainerID, ref.Runtime, ref.Conmon = c[len("crio-conmon-"):], RuntimeCRIO, true
	case strings.HasPrefix(c, "crio-"):
		ref.ContainerID, ref.Runtime = c[len("crio-"):], RuntimeCRIO
	default:
		ref.ContainerID = c
	}
	if !containerID(ref.ContainerID) {
		return Ref{}, false
	}
	return ref, true
}

// systemdPodSlice parses a pod's slice, <prefix>-pod<uid>.slice, and
// returns what follows ".slice:" in runc's colon form.
func systemdPodSlice(seg string) (ref Ref, suffix string, ok bool) {
	name, suffix, _ := strings.Cut(seg, ":")
	if name, ok = strings.CutSuffix(name, ".slice"); !ok {
		return Ref{}, "", false
	}
	i := strings.LastIndex(name, "-pod")
	if i < 0 {
		return Ref{}, "", false
	}
	prefix := name[:i]
	if ref.PodUID, ok = podUID(name[i+len("-pod"):], '_'); !ok {
		return Ref{}, "", false
	}
	ref.QOSClass = string(corev1.PodQOSGuaranteed)
	if p, ok := strings.CutSuffix(prefix, "-burstable"); ok {
		prefix, ref.QOSClass = p, string(corev1.PodQOSBurstable)
	} else if p, ok := strings.CutSuffix(prefix, "-besteffort"); ok {
		prefix, ref.QOSClass = p, string(corev1.PodQOSBestEffort)
	}
	// "kubepods" must be a whole component of the slice's name: the
	// kubelet's own, or below a --cgroup-root (kubelet-kubepods).
	if prefix != "kubepods" && (!strings.HasSuffix(prefix, "-kubepods") || len(prefix) == len("-kubepods")) {
		return Ref{}, "", false
	}
	return ref, suffix, true
}

// systemdScopes maps the prefixes of container scopes to runtimes.
var systemdScopes = []struct {
	prefix, runtime string
	conmon          bool
}{
	{"cri-containerd-", RuntimeContainerd, false},
	{"crio-conmon-", RuntimeCRIO, true},
	{"crio-", RuntimeCRIO, false},
	{"docker-", RuntimeDocker, false},
}

// colonRuntimes maps the middle part of runc's slice:prefix:id form.
var colonRuntimes = map[string]string{
	"cri-containerd": RuntimeContainerd,
	"crio":           RuntimeCRIO,
	"docker":         RuntimeDocker,
}

// parseSystemd parses the container part of a systemd path: the colon
// suffix of the pod's slice, or the segments below it.
func parseSystemd(ref Ref, suffix string, segs []string) (Ref, bool) {
	if suffix != "" {
		prefix, id, ok := strings.Cut(suffix, ":")
		if !ok {
			return Ref{}, false
		}
		if ref.Runtime, ok = colonRuntimes[prefix]; !ok || !containerID(id) {
			return Ref{}, false
		}
		ref.ContainerID = id
		return ref, true
	}
	if len(segs) == 0 {
		return ref, true
	}
	name, ok := strings.CutSuffix(segs[0], ".scope")
	if !ok {
		return Ref{}, false
	}
	for _, s := range systemdScopes {
		if id, ok := strings.CutPrefix(name, s.prefix); ok {
			if !containerID(id) {
				return Ref{}, false
			}
			ref.ContainerID, ref.Runtime, ref.Conmon = id, s.runtime, s.conmon
			return ref, true
		}
	}
	return Ref{}, false
}

// podUID checks a pod UID whose groups are separated by sep and returns
// it with dashes. 32 hex digits without separators (a static pod's hash)
// are returned as they are.
func podUID(s string, sep byte) (string, bool) {
	if len(s) == 32 {
		return s, isLowerHex(s)
	}
	if len(s) != 36 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != sep {
				return "", false
			}
		default:
			if !lowerHex(s[i]) {
				return "", false
			}
		}
	}
	if sep != '-' {
		s = strings.ReplaceAll(s, string(sep), "-")
	}
	return s, true
}

// containerID reports whether s is a container id: 64 lowercase hex
// digits.
func containerID(s string) bool {
	return len(s) == 64 && isLowerHex(s)
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !lowerHex(s[i]) {
			return false
		}
	}
	return true
}

func lowerHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f'
}

// ParseProcCgroup picks the cgroup path out of the content of a
// /proc/<pid>/cgroup file: the cgroup v2 line ("0::/path") when it is not
// "/", else the v1 memory controller's, else v1 name=systemd's, else the
// v2 line's ("/"). It returns "" when there is none of these.
func ParseProcCgroup(content string) string {
	var v2, memory, systemd string
	haveV2 := false
	for line := range strings.Lines(content) {
		line = strings.TrimRight(line, "\r\n")
		hier, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		ctrls, path, ok := strings.Cut(rest, ":")
		if !ok || path == "" {
			continue
		}
		if hier == "0" && ctrls == "" {
			v2, haveV2 = path, true
			continue
		}
		for c := range strings.SplitSeq(ctrls, ",") {
			switch c {
			case "memory":
				memory = path
			case "name=systemd":
				systemd = path
			}
		}
	}
	switch {
	case haveV2 && v2 != "/":
		return v2
	case memory != "":
		return memory
	case systemd != "":
		return systemd
	}
	return v2
}
