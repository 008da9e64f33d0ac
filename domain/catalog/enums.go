package catalog

import "fmt"

// Term is a way a product is sold (annual, monthly or trial). The zero Term
// is not a term; the members are the package variables, and ParseTerm reads
// their names.
type Term struct {
	name string
}

// The terms a product can be sold under.
var (
	// Annual is a one-year paid term, renewed automatically unless turned off (ARS-1).
	Annual = Term{"annual"}
	// Monthly is a one-month paid term that can be cancelled at any time (MON-1).
	Monthly = Term{"monthly"}
	// Trial is a free opt-out trial that bills an annual term at its end (TRI-1, TRI-4).
	Trial = Term{"trial"}
)

var terms = []Term{Annual, Monthly, Trial}

// ParseTerm returns the term named s ("annual", "monthly", "trial").
func ParseTerm(s string) (Term, error) {
	for _, t := range terms {
		if t.name == s {
			return t, nil
		}
	}
	return Term{}, fmt.Errorf("%w: term %q (want annual, monthly or trial)", ErrInvalidValue, s)
}

// String returns the term's name, or "<no term>" for the zero Term.
func (t Term) String() string {
	if t.name == "" {
		return "<no term>"
	}
	return t.name
}

// IsZero reports whether t is the zero Term, which is not a term.
func (t Term) IsZero() bool { return t.name == "" }

// Paid reports whether the term is charged when it starts (annual and
// monthly); a trial is free.
func (t Term) Paid() bool { return t == Annual || t == Monthly }

// MarshalText encodes the term's name; the zero Term is refused.
func (t Term) MarshalText() ([]byte, error) {
	if t.name == "" {
		return nil, fmt.Errorf("%w: zero term", ErrInvalidValue)
	}
	return []byte(t.name), nil
}

// UnmarshalText decodes a term's name with the rules of ParseTerm.
func (t *Term) UnmarshalText(b []byte) error {
	v, err := ParseTerm(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// Platform is an operating system a product runs on. The zero Platform is
// not a platform; the members are the package variables.
type Platform struct {
	name string
}

// The platforms of the catalog.
var (
	// Windows is Microsoft Windows.
	Windows = Platform{"windows"}
	// Mac is Apple macOS.
	Mac = Platform{"mac"}
)

var platforms = []Platform{Windows, Mac}

// ParsePlatform returns the platform named s ("windows", "mac").
func ParsePlatform(s string) (Platform, error) {
	for _, p := range platforms {
		if p.name == s {
			return p, nil
		}
	}
	return Platform{}, fmt.Errorf("%w: platform %q (want windows or mac)", ErrInvalidValue, s)
}

// String returns the platform's name, or "<no platform>" for the zero Platform.
func (p Platform) String() string {
	if p.name == "" {
		return "<no platform>"
	}
	return p.name
}

// IsZero reports whether p is the zero Platform, which is not a platform.
func (p Platform) IsZero() bool { return p.name == "" }

// MarshalText encodes the platform's name; the zero Platform is refused.
func (p Platform) MarshalText() ([]byte, error) {
	if p.name == "" {
		return nil, fmt.Errorf("%w: zero platform", ErrInvalidValue)
	}
	return []byte(p.name), nil
}

// UnmarshalText decodes a platform's name with the rules of ParsePlatform.
func (p *Platform) UnmarshalText(b []byte) error {
	v, err := ParsePlatform(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Region is the sales region of a storefront (ARS-4 lists them). The zero
// Region is not a region; the members are the package variables.
type Region struct {
	name string
}

// The storefront regions of ARS-4.
var (
	// RegionUnitedStates is the United States.
	RegionUnitedStates = Region{"united-states"}
	// RegionCanada is Canada.
	RegionCanada = Region{"canada"}
	// RegionEurope is Europe.
	RegionEurope = Region{"europe"}
	// RegionMiddleEast is the Middle East.
	RegionMiddleEast = Region{"middle-east"}
	// RegionAfrica is Africa.
	RegionAfrica = Region{"africa"}
	// RegionLatinAmerica is Latin America.
	RegionLatinAmerica = Region{"latin-america"}
	// RegionAsiaPacific is Asia Pacific.
	RegionAsiaPacific = Region{"asia-pacific"}
)

var regions = []Region{RegionUnitedStates, RegionCanada, RegionEurope, RegionMiddleEast, RegionAfrica, RegionLatinAmerica, RegionAsiaPacific}

// ParseRegion returns the region named s ("united-states", "canada",
// "europe", "middle-east", "africa", "latin-america", "asia-pacific").
func ParseRegion(s string) (Region, error) {
	for _, r := range regions {
		if r.name == s {
			return r, nil
		}
	}
	return Region{}, fmt.Errorf("%w: region %q", ErrInvalidValue, s)
}

// String returns the region's name, or "<no region>" for the zero Region.
func (r Region) String() string {
	if r.name == "" {
		return "<no region>"
	}
	return r.name
}

// IsZero reports whether r is the zero Region, which is not a region.
func (r Region) IsZero() bool { return r.name == "" }

// MarshalText encodes the region's name; the zero Region is refused.
func (r Region) MarshalText() ([]byte, error) {
	if r.name == "" {
		return nil, fmt.Errorf("%w: zero region", ErrInvalidValue)
	}
	return []byte(r.name), nil
}

// UnmarshalText decodes a region's name with the rules of ParseRegion.
func (r *Region) UnmarshalText(b []byte) error {
	v, err := ParseRegion(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}
