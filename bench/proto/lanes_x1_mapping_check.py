# Host emulation of gemv_lanes_x1_kernel's work split and row-sum reduction (bench/proto/lanes_x1_register_x.patch): every (row, unit) taken once, and the transposed butterfly leaving each row's sum in the lane that adds it to shared memory. Run: python3 bench/proto/lanes_x1_mapping_check.py (prints "bad 0").
import random, itertools
def unit_cols(bits): return 64 if bits in (2,3) else 32 if bits==4 else 16
def takes(cols):
    slices=(cols+2047)//2048
    return cols>0 and slices<=16 and 4*cols>=3*slices*2048
def rows_per_step(bits, ups):
    per_row=64//unit_cols(bits)
    return ups//per_row if ups//per_row>1 else 1
def run(rows, cols, bits, sm, ups):
    UC=unit_cols(bits); L=64//UC; units=cols//UC; R=rows_per_step(bits,ups)
    slices=(cols+2047)//2048; wps=16//slices
    want=(rows+wps*R-1)//(wps*R); blocks=max(1,min(sm,want)); rpb=(rows+blocks-1)//blocks; grid=(rows+rpb-1)//rpb
    cover={}
    x=[random.random() for _ in range(units)]
    W={(r,u):random.random() for r in range(rows) for u in range(units)}
    y=[0.0]*rows
    for b in range(grid):
        r0=b*rpb; r1=min(rows,r0+rpb); sums=[0.0]*rpb
        for warp in range(slices*wps):
            sl=warp%slices; sub=warp//slices
            mine=(r1-r0-sub+wps-1)//wps if r1-r0>sub else 0
            n_it=(mine+R-1)//R
            for i in range(n_it):
                v=[[0.0]*R for _ in range(32)]  # v[lane][r]
                for lane in range(32):
                    for r in range(R):
                        row=r0+sub+wps*(R*i+r)
                        if row>=r1: continue
                        for j in range(L):
                            u=sl*32*L+32*j+lane
                            if u<units:
                                cover[(row,u)]=cover.get((row,u),0)+1
                                v[lane][r]+=W[(row,u)]*x[u]
                # transposed butterfly
                w=16; n=R
                while n>1:
                    nv=[row[:] for row in v]
                    for lane in range(32):
                        hi=(lane&w)!=0
                        for k in range(n//2):
                            other=lane^w
                            send=v[other][k] if hi else v[other][k+n//2]  # partner sends (its hi? v[k]: v[k+n/2])
                            # partner's hi flag is the opposite of ours
                            ohi=(other&w)!=0
                            send=v[other][k] if ohi else v[other][k+n//2]
                            nv[lane][k]=(v[lane][k+n//2] if hi else v[lane][k])+send
                    v=nv; w>>=1; n>>=1
                o=16//R
                while o>0:
                    nv=[row[:] for row in v]
                    for lane in range(32): nv[lane][0]=v[lane][0]+v[lane^o][0]
                    v=nv; o>>=1
                for lane in range(32):
                    if lane%(32//R)==0:
                        row=r0+sub+wps*(R*i+lane//(32//R))
                        if row<r1: sums[row-r0]+=v[lane][0]
        for k in range(r1-r0): y[r0+k]=sums[k]
    ok=all(cover.get((r,u),0)==1 for r in range(rows) for u in range(units)) and len(cover)==rows*units
    err=max(abs(y[r]-sum(W[(r,u)]*x[u] for u in range(units))) for r in range(rows))
    return ok, err, (slices,wps,grid,rpb,R)
bad=0
for bits in (2,3,4,8):
  for ups in (2,4):
    for cols in (1600,4864,6208,8192,16384):
      if not takes(cols) or cols%unit_cols(bits): continue
      for rows in (1,3,67,203):
        ok,err,info=run(rows,cols,bits,132 if rows>100 else 7,ups)
        if not ok or err>1e-9: bad+=1; print("BAD",bits,ups,cols,rows,ok,err,info)
print("bad",bad)
