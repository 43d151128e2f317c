"""The file formats real agency systems speak, read and written without the network or a
database: ANSI/NIST-ITL traditional encoding (`ansi_nist`) and the EBTS transactions the SIB's
edge takes and answers in (`ebts`)."""
