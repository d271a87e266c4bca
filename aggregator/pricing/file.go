package pricing

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"golang.org/x/text/currency"
)

// The pricing file's type.
const (
	APIVersion = "penny.dev/v1"
	Kind       = "Pricing"
)

// OpenCost's published default prices, in USD (configs/default.json of
// github.com/opencost/opencost, which its image installs as
// /models/default.json and its custom pricing reads): what applies where no
// pricing file says otherwise.
const (
	DefaultCurrency          = "USD"
	DefaultCPUCoreHour       = 0.031611
	DefaultRAMGiBHour        = 0.004237
	DefaultSpotCPUCoreHour   = 0.006655
	DefaultSpotRAMGiBHour    = 0.000892
	DefaultEgressInternetGiB = 0.12
	// DefaultEgressClusterGiB prices in-cluster traffic: free, as OpenCost
	// prices traffic within a zone (docs/pricing.md says why).
	DefaultEgressClusterGiB = 0
)

// MaxFileBytes bounds the pricing file: a price list of some ten thousand
// node entries.
const MaxFileBytes = 1 << 20

// CapacityType says how a node is bought.
type CapacityType string

// Capacity types. A node's facts may say CapacityUnknown (or nothing),
// which prices as on-demand; a pricing file's node entry says on-demand or
// spot.
const (
	CapacityOnDemand CapacityType = "on-demand"
	CapacitySpot     CapacityType = "spot"
	CapacityUnknown  CapacityType = "unknown"
)

// File is a pricing file. Absent prices (nil) take OpenCost's defaults.
type File struct {
	// APIVersion must be penny.dev/v1 and Kind Pricing.
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Currency is the ISO 4217 code of every price (USD). A file in another
	// currency must set every default price: OpenCost's are in USD.
	Currency string `json:"currency,omitempty"`
	// Defaults are the prices of nodes without a whole-node price.
	Defaults Prices `json:"defaults"`
	// Nodes are whole-node hourly prices, split into CPU and memory prices.
	Nodes []NodePrice `json:"nodes,omitempty"`
}

// Prices are the default unit prices.
type Prices struct {
	// CPUCoreHour and RAMGiBHour price a core-hour of CPU and a GiB-hour of
	// memory on on-demand nodes; their ratio also splits whole-node prices.
	CPUCoreHour *float64 `json:"cpuCoreHour,omitempty"`
	RAMGiBHour  *float64 `json:"ramGiBHour,omitempty"`
	// SpotCPUCoreHour and SpotRAMGiBHour price spot nodes.
	SpotCPUCoreHour *float64 `json:"spotCPUCoreHour,omitempty"`
	SpotRAMGiBHour  *float64 `json:"spotRAMGiBHour,omitempty"`
	// EgressInternetGiB and EgressClusterGiB price a GiB sent to the
	// internet and within the cluster (private addresses).
	EgressInternetGiB *float64 `json:"egressInternetGiB,omitempty"`
	EgressClusterGiB  *float64 `json:"egressClusterGiB,omitempty"`
}

// NodePrice is the hourly price of one kind of node.
type NodePrice struct {
	// InstanceType is the node's node.kubernetes.io/instance-type, matched
	// without regard to case.
	InstanceType string `json:"instanceType"`
	// Region is its topology.kubernetes.io/region; empty matches any region
	// that has no entry of its own.
	Region string `json:"region,omitempty"`
	// CapacityType is on-demand (the default) or spot.
	CapacityType CapacityType `json:"capacityType,omitempty"`
	// HourlyPrice is the price of the whole node per hour.
	HourlyPrice *float64 `json:"hourlyPrice"`
}

// ErrInvalid marks a pricing file, or prices, that are refused; the error
// names each field and the reason.
var ErrInvalid = errors.New("pricing: invalid")

// FieldError is one problem with one field of a pricing file.
type FieldError struct {
	// Path names the field: currency, defaults.cpuCoreHour,
	// nodes[2].capacityType; empty for the file as a whole.
	Path   string
	Reason string
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Reason
	}
	return e.Path + ": " + e.Reason
}

// Is makes every FieldError an ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func fieldErr(path, format string, a ...any) error {
	return &FieldError{Path: path, Reason: fmt.Sprintf(format, a...)}
}

// Complete fills in the defaults that do not depend on the currency: the
// currency itself (USD) and each node entry's capacity type (on-demand).
// Absent prices stay absent: Validate refuses them in a file of another
// currency, and New resolves them to OpenCost's.
func (f *File) Complete() {
	if f.Currency == "" {
		f.Currency = DefaultCurrency
	}
	for i := range f.Nodes {
		if f.Nodes[i].CapacityType == "" {
			f.Nodes[i].CapacityType = CapacityOnDemand
		}
	}
}

// Validate checks a completed file and returns every problem, joined; each
// is a *FieldError. It changes nothing.
func (f *File) Validate() error {
	var errs []error
	if f.APIVersion != APIVersion {
		errs = append(errs, fieldErr("apiVersion", "%s, not %q", APIVersion, f.APIVersion))
	}
	if f.Kind != Kind {
		errs = append(errs, fieldErr("kind", "%s, not %q", Kind, f.Kind))
	}
	foreign := false // a valid currency other than OpenCost's
	if err := validCurrency(f.Currency); err != nil {
		errs = append(errs, fieldErr("currency", "%v", err))
	} else {
		foreign = f.Currency != DefaultCurrency
	}
	for _, p := range f.Defaults.fields() {
		switch {
		case *p.v == nil && foreign:
			errs = append(errs, fieldErr("defaults."+p.name, "required in a file in %s: OpenCost's defaults are in %s", f.Currency, DefaultCurrency))
		case *p.v != nil:
			if err := validPrice(**p.v); err != nil {
				errs = append(errs, fieldErr("defaults."+p.name, "%v", err))
			}
		}
	}
	seen := make(map[nodeKey]int, len(f.Nodes))
	for i, n := range f.Nodes {
		path := fmt.Sprintf("nodes[%d]", i)
		if strings.TrimSpace(n.InstanceType) == "" {
			errs = append(errs, fieldErr(path+".instanceType", "required"))
		} else if n.InstanceType != strings.TrimSpace(n.InstanceType) {
			errs = append(errs, fieldErr(path+".instanceType", "%q has spaces around it", n.InstanceType))
		}
		if n.Region != strings.TrimSpace(n.Region) {
			errs = append(errs, fieldErr(path+".region", "%q has spaces around it", n.Region))
		}
		if n.CapacityType != CapacityOnDemand && n.CapacityType != CapacitySpot {
			errs = append(errs, fieldErr(path+".capacityType", "%q is not %s or %s", n.CapacityType, CapacityOnDemand, CapacitySpot))
		}
		if n.HourlyPrice == nil {
			errs = append(errs, fieldErr(path+".hourlyPrice", "required"))
		} else if err := validPrice(*n.HourlyPrice); err != nil {
			errs = append(errs, fieldErr(path+".hourlyPrice", "%v", err))
		}
		k := keyOf(n.InstanceType, n.Region, n.CapacityType)
		if j, dup := seen[k]; dup && n.InstanceType != "" {
			errs = append(errs, fieldErr(path, "duplicate of nodes[%d] (instanceType %q, region %q, capacityType %s)",
				j, n.InstanceType, n.Region, n.CapacityType))
		} else {
			seen[k] = i
		}
	}
	return joinProblems(errs)
}

// maxProblems bounds the problems one error lists.
const maxProblems = 50

// joinProblems joins the first maxProblems problems, and says how many
// more there are.
func joinProblems(errs []error) error {
	if n := len(errs) - maxProblems; n > 0 {
		errs = append(errs[:maxProblems:maxProblems], fieldErr("", "and %d more problems", n))
	}
	return errors.Join(errs...)
}

// validPrice checks one price: finite and not negative.
func validPrice(v float64) error {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Errorf("%v is not a price", v)
	case v < 0:
		return fmt.Errorf("negative price %v", v)
	}
	return nil
}

// validCurrency checks an ISO 4217 code, in upper case as the standard
// writes it.
func validCurrency(s string) error {
	if len(s) != 3 || strings.ToUpper(s) != s {
		return fmt.Errorf("%q is not an ISO 4217 code (three capital letters, such as USD or EUR)", s)
	}
	if u, err := currency.ParseISO(s); err != nil || u == (currency.Unit{}) {
		return fmt.Errorf("%q is not an ISO 4217 currency", s)
	}
	return nil
}

// priceField is one default price, by its name in the file.
type priceField struct {
	name string
	v    **float64
	def  float64
}

func (p *Prices) fields() []priceField {
	return []priceField{
		{"cpuCoreHour", &p.CPUCoreHour, DefaultCPUCoreHour},
		{"ramGiBHour", &p.RAMGiBHour, DefaultRAMGiBHour},
		{"spotCPUCoreHour", &p.SpotCPUCoreHour, DefaultSpotCPUCoreHour},
		{"spotRAMGiBHour", &p.SpotRAMGiBHour, DefaultSpotRAMGiBHour},
		{"egressInternetGiB", &p.EgressInternetGiB, DefaultEgressInternetGiB},
		{"egressClusterGiB", &p.EgressClusterGiB, DefaultEgressClusterGiB},
	}
}

// nodeKey identifies a node entry: instance type and region in lower case.
type nodeKey struct {
	instanceType, region string
	capacity             CapacityType
}

func keyOf(instanceType, region string, c CapacityType) nodeKey {
	return nodeKey{strings.ToLower(instanceType), strings.ToLower(region), c}
}

// clone returns a deep copy of f.
func (f *File) clone() *File {
	c := *f
	c.Defaults = f.Defaults.clone()
	c.Nodes = make([]NodePrice, len(f.Nodes))
	for i, n := range f.Nodes {
		c.Nodes[i] = n
		if n.HourlyPrice != nil {
			c.Nodes[i].HourlyPrice = ptr(*n.HourlyPrice)
		}
	}
	if f.Nodes == nil {
		c.Nodes = nil
	}
	return &c
}

func (p Prices) clone() Prices {
	for _, f := range p.fields() {
		if *f.v != nil {
			*f.v = ptr(**f.v)
		}
	}
	return p
}

func ptr(v float64) *float64 { return &v }
