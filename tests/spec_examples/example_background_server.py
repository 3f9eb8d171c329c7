from izzati import Backend

def callback(q, text, data): # <---------------------------------
    print(text, [x.filename for x in data])
    return {'status': 'OK'}

b = Backend(callback, background=True) # <-----------------------
p, q = b.run() # <----------------------------------------
# Block the Python process, or else everything quits
p.join()  # (added: the spec says something must block)
