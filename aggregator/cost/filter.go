package cost

import (
	"fmt"
	"strings"
)

// Limits of a filter, so a hostile one costs little to refuse.
const (
	MaxFilterBytes = 4096
	MaxFilterDepth = 16
)

// Filter selects allocations with OpenCost's filter language (v2):
//
//	namespace:"kube-system"                  equal
//	namespace!:"kube-system","default"       none of these
//	pod~:"web"  pod!~:"web"                  contains, does not contain
//	pod<~:"web-"  pod~>:"-0"                 starts with, ends with (! negates)
//	label[app]:"api"                         a label's value ("" when unset)
//	label:"app"                              has the label
//	namespace:"a"+label[team]:"x"            and
//	namespace:"a"|namespace:"b"              or (mixing + and | needs parentheses)
//	(namespace:"a"|namespace:"b")+pod~:"x"   grouping
//
// Fields: cluster, node, namespace, controllerName, controllerKind, pod,
// container, label, and Penny's tenant. A value of "__unallocated__" means
// empty (no controller, no such label). Several values after one operator
// are ORed (for ! operators: ANDed). Field names are case-insensitive;
// values and label keys are not. A label key also finds a label whose key
// differs only by the characters Prometheus replaces with "_", so
// label[app_kubernetes_io_name] finds app.kubernetes.io/name.
type Filter struct {
	root fnode
	src  string
}

// String is the filter as parsed.
func (f *Filter) String() string { return f.src }

// Match reports whether a container with these properties and tenant
// passes the filter; a nil Filter passes everything.
func (f *Filter) Match(p *Properties, tenant string) bool {
	return f == nil || f.root.match(p, tenant)
}

type fnode interface {
	match(p *Properties, tenant string) bool
}

type andNode []fnode

func (n andNode) match(p *Properties, t string) bool {
	for _, c := range n {
		if !c.match(p, t) {
			return false
		}
	}
	return true
}

type orNode []fnode

func (n orNode) match(p *Properties, t string) bool {
	for _, c := range n {
		if c.match(p, t) {
			return true
		}
	}
	return false
}

type notNode struct{ fnode }

func (n notNode) match(p *Properties, t string) bool { return !n.fnode.match(p, t) }

type field uint8

const (
	fCluster field = iota + 1
	fNode
	fNamespace
	fControllerName
	fControllerKind
	fPod
	fContainer
	fTenant
	fLabel
)

var filterFields = map[string]field{
	"cluster": fCluster, "node": fNode, "namespace": fNamespace, "controllername": fControllerName,
	"controllerkind": fControllerKind, "pod": fPod, "container": fContainer, "tenant": fTenant, "label": fLabel,
}

var unsupportedFields = map[string]bool{
	"provider": true, "services": true, "annotation": true, "department": true, "environment": true,
	"owner": true, "product": true, "team": true,
}

type strOp uint8

const (
	opEqual strOp = iota
	opContains
	opPrefix
	opSuffix
)

func (o strOp) apply(s, v string) bool {
	switch o {
	case opContains:
		return strings.Contains(s, v)
	case opPrefix:
		return strings.HasPrefix(s, v)
	case opSuffix:
		return strings.HasSuffix(s, v)
	}
	return s == v
}

// cmpNode compares a field (or a label's value) with a value; a label
// without a key tests the label keys instead.
type cmpNode struct {
	field  field
	key    string
	hasKey bool
	op     strOp
	value  string
}

func (n *cmpNode) match(p *Properties, tenant string) bool {
	var s string
	switch n.field {
	case fCluster:
		s = p.Cluster
	case fNode:
		s = p.Node
	case fNamespace:
		s = p.Namespace
	case fControllerName:
		s = p.Controller
	case fControllerKind:
		s = p.ControllerKind
	case fPod:
		s = p.Pod
	case fContainer:
		s = p.Container
	case fTenant:
		s = tenant
	case fLabel:
		if n.hasKey {
			s, _ = labelValue(p.Labels, n.key)
			break
		}
		if n.op == opEqual || n.op == opContains {
			_, ok := labelValue(p.Labels, n.value)
			return ok
		}
		for k := range p.Labels {
			if n.op.apply(k, n.value) || n.op.apply(promSanitize(k), n.value) {
				return true
			}
		}
		return false
	}
	return n.op.apply(s, n.value)
}

func promSanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = promChar(c)
	}
	return string(b)
}

// ParseFilter parses a filter; "" (or only blanks) is nil, which passes
// everything.
func ParseFilter(s string) (*Filter, error) {
	if len(s) > MaxFilterBytes {
		return nil, fmt.Errorf("longer than %d bytes", MaxFilterBytes)
	}
	toks, err := lexFilter(s)
	if err != nil {
		return nil, err
	}
	if len(toks) == 1 { // only the end
		return nil, nil
	}
	p := &filterParser{toks: toks}
	root, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errorf(t, "unexpected %s", t)
	}
	return &Filter{root: root, src: strings.TrimSpace(s)}, nil
}

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tString
	tKey
	tComma
	tPlus
	tOr
	tOpen
	tClose
	tOp
)

type token struct {
	kind tokKind
	s    string
	pos  int
	// For tOp: the comparison and whether it is negated.
	op  strOp
	neg bool
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of filter"
	case tString:
		return fmt.Sprintf("%q", t.s)
	case tKey:
		return "[" + t.s + "]"
	}
	return fmt.Sprintf("%q", t.s)
}

var filterOps = []struct {
	s   string
	op  strOp
	neg bool
}{
	// Longest first.
	{"!<~:", opPrefix, true}, {"!~>:", opSuffix, true},
	{"<~:", opPrefix, false}, {"~>:", opSuffix, false}, {"!~:", opContains, true},
	{"!:", opEqual, true}, {"~:", opContains, false},
	{":", opEqual, false},
}

func lexFilter(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
			continue
		case c == ',':
			toks = append(toks, token{kind: tComma, s: ",", pos: i})
			i++
			continue
		case c == '+':
			toks = append(toks, token{kind: tPlus, s: "+", pos: i})
			i++
			continue
		case c == '|':
			toks = append(toks, token{kind: tOr, s: "|", pos: i})
			i++
			continue
		case c == '(':
			toks = append(toks, token{kind: tOpen, s: "(", pos: i})
			i++
			continue
		case c == ')':
			toks = append(toks, token{kind: tClose, s: ")", pos: i})
			i++
			continue
		case c == '"' || c == '[':
			end := byte('"')
			kind := tString
			if c == '[' {
				end, kind = ']', tKey
			}
			j := strings.IndexByte(s[i+1:], end)
			if j < 0 {
				return nil, fmt.Errorf("at offset %d: %c is not closed", i, c)
			}
			toks = append(toks, token{kind: kind, s: s[i+1 : i+1+j], pos: i})
			i += j + 2
			continue
		case identChar(c):
			j := i
			for j < len(s) && identChar(s[j]) {
				j++
			}
			toks = append(toks, token{kind: tIdent, s: s[i:j], pos: i})
			i = j
			continue
		}
		matched := false
		for _, o := range filterOps {
			if strings.HasPrefix(s[i:], o.s) {
				toks = append(toks, token{kind: tOp, s: o.s, pos: i, op: o.op, neg: o.neg})
				i += len(o.s)
				matched = true
				break
			}
		}
		if !matched {
			return nil, fmt.Errorf("at offset %d: unexpected character %q", i, rune(c))
		}
	}
	return append(toks, token{kind: tEOF, pos: len(s)}), nil
}

func identChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

type filterParser struct {
	toks []token
	i    int
}

func (p *filterParser) peek() token { return p.toks[p.i] }

func (p *filterParser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *filterParser) errorf(t token, format string, args ...any) error {
	return fmt.Errorf("at offset %d: %s", t.pos, fmt.Sprintf(format, args...))
}

// expr is element (op element)*, one operator per level of parentheses.
func (p *filterParser) expr(depth int) (fnode, error) {
	first, err := p.element(depth)
	if err != nil {
		return nil, err
	}
	op := p.peek()
	if op.kind != tPlus && op.kind != tOr {
		return first, nil
	}
	nodes := []fnode{first}
	for t := p.peek(); t.kind == tPlus || t.kind == tOr; t = p.peek() {
		if t.kind != op.kind {
			return nil, p.errorf(t, "%s after %s: mixing + and | needs parentheses", t, op)
		}
		p.next()
		n, err := p.element(depth)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	if op.kind == tPlus {
		return andNode(nodes), nil
	}
	return orNode(nodes), nil
}

func (p *filterParser) element(depth int) (fnode, error) {
	t := p.peek()
	if t.kind == tOpen {
		if depth+1 > MaxFilterDepth {
			return nil, p.errorf(t, "parentheses nested deeper than %d", MaxFilterDepth)
		}
		p.next()
		n, err := p.expr(depth + 1)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tClose {
			return nil, p.errorf(c, "expected ) to close the ( at offset %d, found %s", t.pos, c)
		}
		return n, nil
	}
	return p.comparison()
}

func (p *filterParser) comparison() (fnode, error) {
	t := p.next()
	if t.kind != tIdent {
		return nil, p.errorf(t, "expected a field (namespace, pod, label[KEY], ...), found %s", t)
	}
	name := strings.ToLower(t.s)
	f, ok := filterFields[name]
	if !ok {
		if unsupportedFields[name] {
			return nil, p.errorf(t, "field %q is not supported by Penny", t.s)
		}
		return nil, p.errorf(t, "unknown field %q: want cluster, node, namespace, controllerName, controllerKind, pod, container, tenant or label[KEY]", t.s)
	}
	n := cmpNode{field: f}
	if p.peek().kind == tKey {
		k := p.next()
		if f != fLabel {
			return nil, p.errorf(k, "only label takes a [key]")
		}
		n.key, n.hasKey = strings.TrimSpace(k.s), true
		if n.key == "" {
			return nil, p.errorf(k, "empty label key")
		}
	}
	op := p.next()
	if op.kind != tOp {
		return nil, p.errorf(op, "expected an operator (:, !:, ~:, !~:, <~:, !<~:, ~>:, !~>:), found %s", op)
	}
	n.op = op.op
	var nodes []fnode
	for {
		v := p.next()
		if v.kind != tString {
			return nil, p.errorf(v, "expected a quoted value, found %s", v)
		}
		c := n
		if c.value = v.s; c.value == UnallocatedSuffix {
			c.value = ""
		}
		if c.field == fLabel && !c.hasKey && c.value == "" {
			return nil, p.errorf(v, "label without a key tests for a label key, which cannot be empty")
		}
		var node fnode = &c
		if op.neg {
			node = notNode{node}
		}
		nodes = append(nodes, node)
		if p.peek().kind != tComma {
			break
		}
		p.next()
	}
	switch {
	case len(nodes) == 1:
		return nodes[0], nil
	case op.neg:
		return andNode(nodes), nil
	}
	return orNode(nodes), nil
}
