"""DHS US-VISIT IDENT: immigration encounters, biometric 1:N identification, the IDR."""
