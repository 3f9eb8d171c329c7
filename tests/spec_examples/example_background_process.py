from izzati import Backend, background # <-------------

def callback(text, data, q):
    print(text, [x.filename for x in data])
    q.put(text['name'])
    return {'status': 'OK'}

def background_process(q, greeting): # <---------------
    while True:
        name = q.get()
        print(greeting + ", " + name)

p, q = background(background_process, args=("Hello",)) # <--------------
# Also supports default arguments with kwargs:
# p, q = background(background_process, kwargs={"greeting": "Hello"})

b = Backend(callback, args=(q,)) # <-----------------------
# Also supports default arguments with kwargs:
# b = Backend(callback, kwargs={'q': q})

b.run()
