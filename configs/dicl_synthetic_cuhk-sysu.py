_base_ = './dicl/dicl_r18-narrow-c4_1xb2-50e_synthetic-cuhk-sysu.py'
