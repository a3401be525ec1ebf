/* cnnc.c - placeholder driver, replaced by the front end. */
int main(void) { return 0; }
