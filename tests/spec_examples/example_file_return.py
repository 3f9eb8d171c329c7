from izzati import Backend, file_return

def p(text, data):
    print(text, [x.filename for x in data])
    return file_return('file.txt')

b = Backend(p)
b.run()
