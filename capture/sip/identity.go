package sip

// identity reads the value v of one Identity header (RFC 8224 §4): it
// becomes Identity when none is kept yet, or when the one kept is not a
// SHAKEN PASSporT and v is (see [Message.Identity]).
func (m *Message) identity(v []byte) {
	if len(v) > 0 && (m.Identity == nil || !shaken(m.Identity) && shaken(v)) {
		m.Identity = v
	}
}

// shaken reports whether the Identity value v has the parameter
// ppt=shaken (RFC 8224 §4 ppt-param, RFC 8588 §5), its value a token or a
// quoted string, matched without case.
func shaken(v []byte) bool {
	p := param(v, "ppt")
	if len(p) >= 2 && p[0] == '"' && p[len(p)-1] == '"' {
		p = p[1 : len(p)-1]
	}
	return eqFold(p, "shaken")
}
