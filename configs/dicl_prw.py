_base_ = './dicl/dicl_r50-c4_1xb4-26e_prw.py'
