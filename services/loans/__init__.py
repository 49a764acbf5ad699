"""The loans service: sharia WASH financing from application to settlement."""
