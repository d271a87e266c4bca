package kube

import (
	"fmt"
	"strings"
	"testing"
)

const (
	uid  = "8a1c2f4e-3b5d-4e6f-9a7b-0c1d2e3f4a5b"
	uidU = "8a1c2f4e_3b5d_4e6f_9a7b_0c1d2e3f4a5b" // as a systemd slice escapes it
	// staticUID is a static pod's UID: the kubelet's hash of its manifest.
	staticUID = "6f5e2c0d9b8a71f4e3d2c1b0a9f8e7d6"
	cid       = "3f9e8d7c6b5a49382716f5e4d3c2b1a0f9e8d7c6b5a49382716f5e4d3c2b1a0f"
	cid2      = "a0b1c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f5061728394a5b6c7d8e9f"
)

// v1Cgroup returns a /proc/<pid>/cgroup file of a process in path on a
// cgroup v1 host, every controller at the same path as container runtimes
// lay them out, and, when hybrid, with systemd's unified line.
func v1Cgroup(t *testing.T, path string, hybrid bool) string {
	t.Helper()
	var b strings.Builder
	for i, ctrl := range []string{"hugetlb", "memory", "cpuset", "devices", "blkio", "net_cls,net_prio",
		"freezer", "pids", "perf_event", "cpu,cpuacct", "rdma", "name=systemd"} {
		p := path
		if ctrl == "rdma" {
			p = "/" // runtimes leave rdma alone
		}
		fmt.Fprintf(&b, "%d:%s:%s\n", 12-i, ctrl, p)
	}
	if hybrid {
		b.WriteString("0::/\n")
	}
	return b.String()
}

func TestParsePathRuntimesDriversVersions(t *testing.T) {
	const (
		burstable  = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice"
		besteffort = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidU + ".slice"
		guaranteed = "/kubepods.slice/kubepods-pod" + uidU + ".slice"
	)
	tests := []struct {
		name string
		path string // as the cgroup v2 line or every v1 controller shows it
		want Ref
	}{
		{"containerd systemd burstable", burstable + "/cri-containerd-" + cid + ".scope",
			Ref{PodUID: uid, ContainerID: cid, Runtime: RuntimeContainerd, QOSClass: "Burstable"}},
		{"containerd systemd guaranteed", guaranteed + "/cri-containerd-" + cid + ".scope",
			Ref{PodUID: uid, ContainerID: cid, Runtime: RuntimeContainerd, QOSClass: "Guaranteed"}},
		{"containerd cgroupfs burstable", "/kubepods/burstable/pod" + uid + "/" + cid,
			Ref{PodUID: uid, ContainerID: cid, QOSClass: "Burstable"}},
		{"containerd cgroupfs guaranteed", "/kubepods/pod" + uid + "/" + cid,
			Ref{PodUID: uid, ContainerID: cid, QOSClass: "Guaranteed"}},
		{"cri-o systemd besteffort", besteffort + "/crio-" + cid + ".scope",
			Ref{PodUID: uid, ContainerID: cid, Runtime: RuntimeCRIO, QOSClass: "BestEffort"}},
		{"cri-o systemd conmon", burstable + "/crio-conmon-" + cid + ".scope",
			Ref{PodUID: uid, ContainerID: cid, Runtime: RuntimeCRIO, QOSClass: "Burstable", Conmon: true}},
		{"cri-o cgroupfs besteffort", "/kubepods/besteffort/pod" + uid + "/crio-" + cid,
			Ref{PodUID: uid, ContainerID: cid, Runtime: RuntimeCRIO, QOSClass: "BestEffort"}},
		{"cri-o cgroupfs conmon", "/kubepods/burstable/pod" + uid + "/crio-conmon-" + cid,
			Ref{PodUID: uid, ContainerID: cid, Runtime: RuntimeCRIO, QOSClass: "Burstable", Conmon: true}},
		{"cri-dockerd systemd burstable", burstable + "/docker-" + cid + ".scope",
			Ref{PodUID: uid, ContainerID: cid, Runtime: RuntimeDocker, QOSClass: "Burstable"}},
		{"cri-dockerd systemd guaranteed", guaranteed + "/docker-" + cid + ".scope",
			Ref{PodUID: uid, ContainerID: cid, Runtime: RuntimeDocker, QOSClass: "Guaranteed"}},
		{"cri-dockerd cgroupfs besteffort", "/kubepods/besteffort/pod" + uid + "/" + cid,
			Ref{PodUID: uid, ContainerID: cid, QOSClass: "BestEffort"}},
		{"cri-dockerd cgroupfs guaranteed", "/kubepods/pod" + uid + "/" + cid,
			Ref{PodUID: uid, ContainerID: cid, QOSClass: "Guaranteed"}},
	}
	for _, tt := range tests {
		for _, v := range []struct {
			name string
			proc string
		}{
			{"v2", "0::" + tt.path + "\n"},
			{"v1", v1Cgroup(t, tt.path, false)},
			{"hybrid", v1Cgroup(t, tt.path, true)},
		} {
			t.Run(tt.name+"/"+v.name, func(t *testing.T) {
				path := ParseProcCgroup(v.proc)
				if path != tt.path {
					t.Fatalf("ParseProcCgroup() = %q, want %q", path, tt.path)
				}
				got, ok := ParsePath(path)
				if !ok || got != tt.want {
					t.Fatalf("ParsePath(%q) = %+v, %v; want %+v, true", path, got, ok, tt.want)
				}
			})
		}
	}
}

func TestParsePath(t *testing.T) {
	ok := func(r Ref) *Ref { return &r }
	tests := []struct {
		name string
		path string
		want *Ref // nil: not a pod's
	}{
		// Nesting above the pod.
		{"kind node, kubelet cgroup root", "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope",
			ok(Ref{PodUID: uid, ContainerID: cid, Runtime: RuntimeContainerd, QOSClass: "BestEffort"})},
		{"kind node seen from the host", "/system.slice/docker-" + cid2 + ".scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope",
			ok(Ref{PodUID: uid, ContainerID: cid, Runtime: RuntimeContainerd, QOSClass: "Guaranteed"})},
		{"runc colon form under containerd.service", "/system.slice/containerd.service/kubepods-burstable-pod" + uidU + ".slice:cri-containerd:" + cid,
			ok(Ref{PodUID: uid, ContainerID: cid, Runtime: RuntimeContainerd, QOSClass: "Burstable"})},
		{"colon form, cri-o", "/system.slice/crio.service/kubepods-pod" + uidU + ".slice:crio:" + cid,
			ok(Ref{PodUID: uid, ContainerID: cid, Runtime: RuntimeCRIO, QOSClass: "Guaranteed"})},
		{"cgroupfs below a cgroup root", "/kubelet/kubepods/burstable/pod" + uid + "/" + cid,
			ok(Ref{PodUID: uid, ContainerID: cid, QOSClass: "Burstable"})},
		// Below the container.
		{"cri-o container subgroup", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/crio-" + cid + ".scope/container",
			ok(Ref{PodUID: uid, ContainerID: cid, Runtime: RuntimeCRIO, QOSClass: "Burstable"})},
		{"systemd in a container", "/kubepods.slice/kubepods-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope/init.scope",
			ok(Ref{PodUID: uid, ContainerID: cid, Runtime: RuntimeContainerd, QOSClass: "Guaranteed"})},
		{"cgroupfs nested", "/kubepods/besteffort/pod" + uid + "/" + cid + "/a/b",
			ok(Ref{PodUID: uid, ContainerID: cid, QOSClass: "BestEffort"})},
		// The pod-level cgroup.
		{"pod slice", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice",
			ok(Ref{PodUID: uid, QOSClass: "Burstable"})},
		{"pod cgroupfs", "/kubepods/pod" + uid, ok(Ref{PodUID: uid, QOSClass: "Guaranteed"})},
		{"trailing slash", "/kubepods/besteffort/pod" + uid + "/", ok(Ref{PodUID: uid, QOSClass: "BestEffort"})},
		// Static pods: the kubelet's hash as UID.
		{"static pod systemd", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + staticUID + ".slice/cri-containerd-" + cid + ".scope",
			ok(Ref{PodUID: staticUID, ContainerID: cid, Runtime: RuntimeContainerd, QOSClass: "Burstable"})},
		{"static pod cgroupfs", "/kubepods/burstable/pod" + staticUID + "/" + cid,
			ok(Ref{PodUID: staticUID, ContainerID: cid, QOSClass: "Burstable"})},

		// Not a pod's.
		{"root", "/", nil},
		{"empty", "", nil},
		{"systemd service", "/system.slice/containerd.service", nil},
		{"user session", "/user.slice/user-1000.slice/session-3.scope", nil},
		{"docker outside kubepods, systemd", "/system.slice/docker-" + cid + ".scope", nil},
		{"docker outside kubepods, cgroupfs", "/docker/" + cid, nil},
		{"kubepods slice", "/kubepods.slice", nil},
		{"qos slice", "/kubepods.slice/kubepods-burstable.slice", nil},
		{"kubepods cgroupfs", "/kubepods", nil},
		{"qos cgroupfs", "/kubepods/besteffort", nil},
		{"kubepods within a word, cgroupfs", "/mykubepods/burstable/pod" + uid + "/" + cid, nil},
		{"kubepods within a word, systemd", "/system.slice/notkubepods-burstable-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope", nil},
		{"kubepods as a prefix, systemd", "/kubepodsx.slice/kubepodsx-pod" + uidU + ".slice", nil},
		{"empty slice component", "/-kubepods-pod" + uidU + ".slice", nil},
		{"unknown qos", "/kubepods/silver/pod" + uid + "/" + cid, nil},
		{"uid with uppercase", "/kubepods/pod" + strings.ToUpper(uid) + "/" + cid, nil},
		{"uid too short", "/kubepods/pod" + uid[:35] + "/" + cid, nil},
		{"uid not hex", "/kubepods/pod" + "8a1c2f4e-3b5d-4e6f-9a7b-0c1d2e3f4a5g" + "/" + cid, nil},
		{"uid with underscores in cgroupfs", "/kubepods/pod" + uidU + "/" + cid, nil},
		{"uid with dashes in a slice", "/kubepods.slice/kubepods-pod" + uid + ".slice", nil},
		{"uid misplaced separator", "/kubepods/pod8a1c2f4e3-b5d-4e6f-9a7b-0c1d2e3f4a5b/" + cid, nil},
		{"container id not hex", "/kubepods/pod" + uid + "/" + strings.Repeat("g", 64), nil},
		{"container id uppercase", "/kubepods.slice/kubepods-pod" + uidU + ".slice/cri-containerd-" + strings.ToUpper(cid) + ".scope", nil},
		{"container id short", "/kubepods/pod" + uid + "/" + cid[:12], nil},
		{"container id long", "/kubepods/pod" + uid + "/" + cid + "0", nil},
		{"unknown cgroup in a pod, cgroupfs", "/kubepods/pod" + uid + "/extra", nil},
		{"unknown scope in a pod slice", "/kubepods.slice/kubepods-pod" + uidU + ".slice/runc-" + cid + ".scope", nil},
		{"container scope without .scope", "/kubepods.slice/kubepods-pod" + uidU + ".slice/cri-containerd-" + cid, nil},
		{"colon form, unknown runtime", "/kubepods-pod" + uidU + ".slice:runc:" + cid, nil},
		{"colon form, bad id", "/kubepods-pod" + uidU + ".slice:cri-containerd:xyz", nil},
		{"no pod segment after qos", "/kubepods/burstable/" + cid, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParsePath(tt.path)
			if tt.want == nil {
				if ok {
					t.Fatalf("ParsePath(%q) = %+v, true; want not a pod's", tt.path, got)
				}
				return
			}
			if !ok || got != *tt.want {
				t.Fatalf("ParsePath(%q) = %+v, %v; want %+v, true", tt.path, got, ok, *tt.want)
			}
		})
	}
}

func TestParseProcCgroup(t *testing.T) {
	const pod = "/kubepods/burstable/pod" + uid + "/" + cid
	tests := []struct {
		name, content, want string
	}{
		{"v2", "0::/system.slice/sshd.service\n", "/system.slice/sshd.service"},
		{"v2 without newline", "0::" + pod, pod},
		{"v2 root", "0::/\n", "/"},
		{"v1 memory", "4:memory:" + pod + "\n3:cpu,cpuacct:/other\n1:name=systemd:/elsewhere\n", pod},
		{"v1 memory among others", "5:pids:/a\n4:cpuacct,memory:" + pod + "\n", pod},
		{"v1 without memory", "3:cpu,cpuacct:/other\n1:name=systemd:" + pod + "\n", pod},
		{"hybrid, v2 set", "4:memory:/kubepods/x\n1:name=systemd:/kubepods/x\n0::" + pod + "\n", pod},
		{"hybrid, v2 root", "4:memory:" + pod + "\n1:name=systemd:/user.slice\n0::/\n", pod},
		{"hybrid, only systemd", "1:name=systemd:" + pod + "\n0::/\n", pod},
		{"colon form keeps its colons", "0::/system.slice/containerd.service/kubepods-pod" + uidU + ".slice:cri-containerd:" + cid + "\n",
			"/system.slice/containerd.service/kubepods-pod" + uidU + ".slice:cri-containerd:" + cid},
		{"crlf", "0::" + pod + "\r\n", pod},
		{"empty", "", ""},
		{"garbage", "not a cgroup file\n", ""},
		{"v1 nothing useful", "3:cpu,cpuacct:/x\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseProcCgroup(tt.content); got != tt.want {
				t.Fatalf("ParseProcCgroup(%q) = %q, want %q", tt.content, got, tt.want)
			}
		})
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		"/kubepods/burstable/pod" + uid + "/" + cid,
		"/kubepods.slice/kubepods-pod" + uidU + ".slice/crio-conmon-" + cid + ".scope",
		"/system.slice/containerd.service/kubepods-burstable-pod" + uidU + ".slice:cri-containerd:" + cid,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		ref, ok := ParsePath(path)
		if !ok {
			return
		}
		if len(ref.PodUID) != 36 && len(ref.PodUID) != 32 {
			t.Fatalf("ParsePath(%q): pod UID %q", path, ref.PodUID)
		}
		if ref.ContainerID != "" && !containerID(ref.ContainerID) {
			t.Fatalf("ParsePath(%q): container id %q", path, ref.ContainerID)
		}
		if ref.QOSClass == "" {
			t.Fatalf("ParsePath(%q): no QoS class", path)
		}
	})
}
