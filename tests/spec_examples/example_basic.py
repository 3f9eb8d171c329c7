from izzati import Backend, file_return

def p(text, data):
    print(text, [x.filename for x in data])
    return {'status': 'yes'}
    # return file_return('file.txt')

b = Backend(p)
b.run() # The host and port can be set as well:
# b.run(host='0.0.0.0', port=5030) # Default is 0.0.0.0 and 5020
