int part3;
