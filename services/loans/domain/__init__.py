"""The pure core of the loans service (sharia WASH financing): no I/O here.

- ``schedule``: whole-rupiah maths (instalments, cost/margin split, tranches, allocation, rebate)
- ``product``: the product catalogue and the cooperative's loan settings
- ``financing``: the financing aggregate (state, evolve, decide_*)
- ``quality``: portfolio quality as of a date (days past due, PAR, provisioning, repayment rate)
"""
