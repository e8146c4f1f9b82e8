package collector

// NormalisePhrase returns the label value of a wire reason phrase.
func NormalisePhrase(b []byte) string {
	var buf [MaxPhraseBytes]byte
	return string(buf[:normalisePhrase(&buf, b)])
}
