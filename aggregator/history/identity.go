package history

import (
	"hash/fnv"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/internal/podmeta"
)

// Identity is who a container is, as its records reference it (by Ref,
// per node): its cgroup path and, on Kubernetes, its pod. A container
// whose pod changes (relabelled) gets a new identity and ref, so that its
// past keeps the labels it had.
type Identity struct {
	Path      string
	Namespace string
	Pod       string
	// Container is the container's name, or its cgroup path outside
	// Kubernetes (penny local: a systemd service, a docker container).
	Container      string
	ControllerKind string
	Controller     string
	Labels         map[string]string
	// LastSeen (unix seconds) is the end of the last hour the container
	// was seen in, as of when the identity was last written: retention
	// deletes the identity once that is older than the hour records.
	LastSeen int64
}

// identityOf builds a container's identity from its series' metadata.
// Metadata that names no pod, or is malformed, gives a container outside
// Kubernetes named by its path.
func identityOf(path string, meta map[string]string) (Identity, podmeta.Container) {
	p, c, ok, err := podmeta.Decode(meta)
	if !ok || err != nil {
		return Identity{Path: path, Container: path}, podmeta.Container{}
	}
	kind, name := cost.Controller(p.OwnerKind, p.OwnerName, p.Labels)
	return Identity{Path: path, Namespace: p.Namespace, Pod: p.Name, Container: c.Name,
		ControllerKind: kind, Controller: name, Labels: p.Labels}, c
}

// CostContainer is the identity as the cost model takes it.
func (id *Identity) CostContainer(node string) cost.Container {
	return cost.Container{Node: node, Namespace: id.Namespace, Pod: id.Pod, Container: id.Container,
		ControllerKind: id.ControllerKind, Controller: id.Controller, Labels: id.Labels}
}

// Limits of identities.
const (
	maxName   = 253
	maxLabels = podmeta.MaxLabels + 16
	maxLabel  = 64 << 10
)

// Encode encodes an identity: [path, namespace, pod, container,
// controller kind, controller, last seen, labels].
func (id *Identity) Encode() []byte {
	e := enc{b: make([]byte, 0, 128+len(id.Path))}
	id.encode(&e, true)
	return e.b
}

func (id *Identity) encode(e *enc, lastSeen bool) {
	e.array(8)
	e.str(id.Path)
	e.str(id.Namespace)
	e.str(id.Pod)
	e.str(id.Container)
	e.str(id.ControllerKind)
	e.str(id.Controller)
	if lastSeen {
		e.int(id.LastSeen)
	} else {
		e.int(0)
	}
	e.strMap(id.Labels)
}

// hash identifies the identity but for LastSeen.
func (id *Identity) hash() uint64 {
	var e enc
	id.encode(&e, false)
	h := fnv.New64a()
	h.Write(e.b)
	return h.Sum64()
}

// DecodeIdentity decodes an identity.
func DecodeIdentity(b []byte) (*Identity, error) {
	d := dec{b: b}
	if n := d.array(8, 1); n != 8 {
		d.fail("identity of %d elements", n)
	}
	id := &Identity{Path: d.str(model.MaxPath), Namespace: d.str(maxName), Pod: d.str(maxName)}
	id.Container, id.ControllerKind, id.Controller = d.str(model.MaxPath), d.str(maxName), d.str(maxName)
	id.LastSeen = d.int()
	id.Labels = d.strMap(maxLabels, maxLabel)
	if err := d.end(); err != nil {
		return nil, err
	}
	return id, nil
}

// lastSeenOf reads only an identity's LastSeen.
func lastSeenOf(b []byte) (int64, error) {
	d := dec{b: b}
	if n := d.array(8, 1); n != 8 {
		d.fail("identity of %d elements", n)
	}
	for _, l := range []int{model.MaxPath, maxName, maxName, model.MaxPath, maxName, maxName} {
		d.str(l)
	}
	v := d.int()
	return v, d.err
}

// pathHash identifies a path in a cursor.
func pathHash(path string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(path))
	return h.Sum64()
}
