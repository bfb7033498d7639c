// msgpackr checks for a falsy export and then uses its pure JavaScript decoder.
module.exports = null;
