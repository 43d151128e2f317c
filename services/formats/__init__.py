"""The formats real agency systems speak, read and written without the network or a database:
ANSI/NIST-ITL traditional encoding (`ansi_nist`), the EBTS transactions the SIB's edge takes and
answers in (`ebts`), and the Nlets text of LESC's IAQ and IAR (`nlets`)."""
